-- A schema-1 session table as SessionMiddleware 1 (schema version 1) created it, with three sessions.
CREATE TABLE IF NOT EXISTS "__session_middleware_schema" (table_name text NOT NULL PRIMARY KEY, version integer NOT NULL, migrated_at bigint NOT NULL);
CREATE TABLE IF NOT EXISTS "sessions" (
    id bytea NOT NULL PRIMARY KEY,
    user_id text NULL,
    data bytea NOT NULL,
    created_at bigint NOT NULL,
    last_access bigint NOT NULL,
    version bigint NOT NULL,
    ip text NULL,
    user_agent text NULL
);
CREATE INDEX IF NOT EXISTS "ix_sessions_last_access" ON "sessions" (last_access);
CREATE INDEX IF NOT EXISTS "ix_sessions_created_at" ON "sessions" (created_at);
CREATE INDEX IF NOT EXISTS "ix_sessions_user_id" ON "sessions" (user_id) WHERE user_id IS NOT NULL;
INSERT INTO "__session_middleware_schema" (table_name, version, migrated_at) VALUES ('sessions', 1, 1767268800);
INSERT INTO "sessions" (id, user_id, data, created_at, last_access, version, ip, user_agent) VALUES ('\x7bc233cc850e734f012f41c1895d81e33a711b0a0559dcfaa2563b449afbdcce'::bytea, 'alice', '\x01010463617274076974656d732d31'::bytea, 1767268800, 1767268800, 1, '127.0.0.1', 'fixture');
INSERT INTO "sessions" (id, user_id, data, created_at, last_access, version, ip, user_agent) VALUES ('\x43106414a75ba0395d476e07ba7fd907e4ecde48b5d97bcfc064faf79f3ea1f2'::bytea, NULL, '\x01010463617274076974656d732d32'::bytea, 1767268800, 1767268800, 1, '127.0.0.1', 'fixture');
INSERT INTO "sessions" (id, user_id, data, created_at, last_access, version, ip, user_agent) VALUES ('\x175bdbd48576ce22f3b35ec708302f65243a28ac7c44d2c89ef9c4e00d9824c1'::bytea, NULL, '\x01010463617274076974656d732d33'::bytea, 1767268800, 1767268800, 1, '127.0.0.1', 'fixture');
