//! The MCP layer (rmcp): transports, the tool catalog, schemas, rendering, and the
//! safety gates every tool passes through (modes, confirmation, scope, redaction,
//! output cap, audit).
