-- Secrets that must stay out of the exported log (webhook signing secrets), sealed by the
-- application with the server's secrets key before they arrive here.
CREATE TABLE sealed_secrets (
    owner  TEXT NOT NULL PRIMARY KEY,
    tenant TEXT NOT NULL,
    sealed BLOB NOT NULL
);
