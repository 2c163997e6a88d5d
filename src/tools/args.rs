//! Argument types many tools share: the names and ids of Fly resources, each a
//! newtype whose JSON Schema (type, bounds, pattern) is written once here.
//!
//! The gate checks every call against its tool's input schema before the arguments
//! are deserialized (`ToolDef::validate`), so these types carry what the schema
//! promises; deserializing them is transparent. A field can narrow the schema further
//! with its own `#[schemars(length(..))]` or `pattern(..)` (e.g. an app name to create
//! needs two characters), which replaces the bound written here. Each schema is
//! inlined (`inline_schema`), so the published tool schemas have no `$ref`.

use std::{borrow::Cow, fmt, ops::Deref};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A Fly app name (also the pattern of pool and machine names): lower-case letters,
/// digits and dashes, not starting with a dash.
pub const NAME_PATTERN: &str = r"^[a-z0-9][a-z0-9-]*$";

/// A machine id: 14 lower-case hex characters.
const MACHINE_ID_PATTERN: &str = r"^[0-9a-f]{14}$";

/// A volume id: `vol_` and letters or digits.
const VOLUME_ID_PATTERN: &str = r"^vol_[A-Za-z0-9]+$";

/// A string argument with its schema: the struct, transparent serde, an inlined
/// `JsonSchema`, and the ways to read it as a `str`.
macro_rules! string_arg {
    ($(#[$doc:meta])* $name:ident, $schema:tt) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

string_arg!(
    /// The name of an existing Fly app.
    AppName,
    {"type": "string", "minLength": 1, "maxLength": 63, "pattern": NAME_PATTERN}
);

string_arg!(
    /// A machine id.
    MachineId,
    {"type": "string", "pattern": MACHINE_ID_PATTERN}
);

string_arg!(
    /// A Fly region code (`iad`, `ams`, ...; `platform_info` lists them).
    Region,
    {"type": "string", "minLength": 2, "maxLength": 8}
);

string_arg!(
    /// A volume id.
    VolumeId,
    {"type": "string", "minLength": 1, "maxLength": 64, "pattern": VOLUME_ID_PATTERN}
);

impl MachineId {
    /// The ids as the workflows take them.
    pub fn strings(ids: &[MachineId]) -> Vec<String> {
        ids.iter().map(|id| id.0.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, JsonSchema)]
    #[expect(dead_code, reason = "only the schema is read")]
    struct Example {
        /// App name.
        app: AppName,
        /// Machines.
        #[schemars(length(max = 3))]
        machine_ids: Vec<MachineId>,
        /// Where.
        #[schemars(length(min = 3, max = 4))]
        region: Option<Region>,
    }

    #[test]
    fn schemas_are_inlined_and_fields_can_narrow_them() {
        let mut settings = schemars::generate::SchemaSettings::draft2020_12();
        settings.inline_subschemas = true;
        let schema = settings.into_generator().into_root_schema_for::<Example>();
        let value = schema.to_value();
        assert!(value.get("$defs").is_none(), "{value}");
        let props = &value["properties"];
        assert_eq!(
            props["app"],
            serde_json::json!({"description": "App name.", "type": "string", "minLength": 1,
                "maxLength": 63, "pattern": NAME_PATTERN})
        );
        assert_eq!(
            props["machine_ids"]["items"],
            serde_json::json!({"type": "string", "pattern": MACHINE_ID_PATTERN})
        );
        assert_eq!(props["region"]["minLength"], 3);
        assert_eq!(props["region"]["maxLength"], 4);
    }
}
