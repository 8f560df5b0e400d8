-- One row that `/readyz` rewrites: proof that a write can be committed right now (the file is
-- there and writable, the disk has room, no other process holds the lock past the busy timeout).
CREATE TABLE service_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    written_at TEXT NOT NULL
);
