//! The HTTP transport: auth, Host/Origin validation, body limit, revocation.
