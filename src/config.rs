//! Fly settings resolved the way flyctl resolves them: token sources in order,
//! API base URLs, default org. The token is held as a `SecretString`.
