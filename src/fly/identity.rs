//! Who a token belongs to, over GraphQL (`viewer`): the identity check for tokens that
//! are not macaroons, which `GET /v1/tokens/current` does not describe (it reads the
//! macaroons of the header).

use super::graphql::gql;
use super::{Client, Error};

/// The principal behind a token (GraphQL `viewer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Viewer {
    /// The user's email address.
    pub email: String,
    /// Display name, when set.
    pub name: Option<String>,
}

impl Client {
    /// GraphQL `viewer`: the user behind the token.
    pub async fn viewer(&self) -> Result<Viewer, Error> {
        let data = self
            .graphql::<gql::Viewer>("viewer", gql::viewer::Variables {}, false)
            .await?;
        Ok(Viewer {
            email: data.viewer.email,
            name: data.viewer.name.filter(|n| !n.is_empty()),
        })
    }
}
