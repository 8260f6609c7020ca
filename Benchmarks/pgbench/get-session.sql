SELECT created_at, last_activity, is_initialized, protocol_version, client_info, client_capabilities, server_capabilities, metadata, state, version FROM mcp_sessions WHERE id = :client_id;
