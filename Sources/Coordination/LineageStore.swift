import FleetCore
import Foundation
import GRDB

/// The lineage store: the coordinator's SQLite database (one writer, WAL).
/// Runs, tasks, executions, chunks, the edges between chunks and
/// executions, the outbox of messages to send, the workers seen, and an
/// append-only audit log. Every write is one transaction.
///
/// The schema changes only through new named migrations below; a migration
/// that shipped is never edited.
public final class LineageStore: Sendable {
    let pool: DatabasePool
    public let path: String

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            // WAL comes with DatabasePool; NORMAL is durable across a process
            // crash (kill -9), which is the failure this store must survive.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Keep the hot pages in memory: the intake reads tasks and
            // executions by key for every event (64 MiB cache, reads mapped).
            try db.execute(sql: "PRAGMA cache_size = -65536")
            try db.execute(sql: "PRAGMA mmap_size = 268435456")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        pool = try DatabasePool(path: path, configuration: config)
        try Self.migrator.migrate(pool)
    }

    static var migrator: DatabaseMigrator { migrator(skipping: []) }

    /// The migrations but those in `skipping`: tests build a store as an
    /// older build left it (0006 applied before 0005 was inserted) and
    /// check what this build makes of it.
    static func migrator(skipping: Set<String>) -> DatabaseMigrator {
        var m = Migrations(skipping: skipping)
        m.registerMigration("0001-lineage") { db in
            try db.execute(sql: """
                CREATE TABLE runs (
                    id TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    pipeline TEXT NOT NULL,
                    state TEXT NOT NULL,
                    spec_text TEXT NOT NULL,
                    spec_sha256 TEXT NOT NULL,
                    spec_file TEXT NOT NULL,
                    spec_directory TEXT NOT NULL,
                    allowed_roots TEXT NOT NULL,
                    partitions INTEGER NOT NULL,
                    approval_required INTEGER NOT NULL,
                    submitted_by TEXT NOT NULL,
                    submitted_at REAL NOT NULL,
                    finished_at REAL,
                    message TEXT,
                    approved_by TEXT,
                    approved_at REAL
                );
                CREATE INDEX runs_by_time ON runs(submitted_at);
                CREATE TABLE tasks (
                    id INTEGER PRIMARY KEY,
                    run TEXT NOT NULL REFERENCES runs(id),
                    stage TEXT NOT NULL,
                    idx INTEGER NOT NULL,
                    state TEXT NOT NULL,
                    attempt INTEGER NOT NULL,
                    max_attempts INTEGER NOT NULL,
                    body BLOB NOT NULL,
                    label TEXT NOT NULL,
                    winner TEXT,
                    result TEXT,
                    last_error TEXT,
                    retries INTEGER NOT NULL DEFAULT 0,
                    planned_at REAL NOT NULL,
                    finished_at REAL,
                    UNIQUE(run, stage, idx)
                );
                CREATE INDEX tasks_by_state ON tasks(run, stage, state);
                CREATE TABLE executions (
                    id TEXT PRIMARY KEY,
                    task INTEGER NOT NULL REFERENCES tasks(id),
                    attempt INTEGER NOT NULL,
                    worker TEXT,
                    host TEXT,
                    pid INTEGER,
                    delivery_count INTEGER NOT NULL DEFAULT 0,
                    state TEXT NOT NULL,
                    started_at REAL,
                    finished_at REAL,
                    rows_in INTEGER NOT NULL DEFAULT 0,
                    rows_out INTEGER NOT NULL DEFAULT 0,
                    rows_quarantined INTEGER NOT NULL DEFAULT 0,
                    error_kind TEXT,
                    error TEXT
                );
                CREATE INDEX executions_by_task ON executions(task);
                CREATE TABLE chunks (
                    id INTEGER PRIMARY KEY,
                    path TEXT NOT NULL,
                    sha256 TEXT NOT NULL,
                    rows INTEGER NOT NULL,
                    bytes INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    partition INTEGER,
                    name TEXT,
                    run TEXT,
                    UNIQUE(path, sha256)
                );
                CREATE INDEX chunks_by_sha ON chunks(sha256);
                CREATE TABLE task_inputs (
                    task INTEGER NOT NULL REFERENCES tasks(id),
                    chunk INTEGER NOT NULL REFERENCES chunks(id),
                    PRIMARY KEY(task, chunk)
                );
                CREATE TABLE edges (
                    chunk INTEGER NOT NULL REFERENCES chunks(id),
                    execution TEXT NOT NULL REFERENCES executions(id),
                    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
                    PRIMARY KEY(chunk, execution, direction)
                );
                CREATE INDEX edges_by_execution ON edges(execution, direction);
                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY,
                    task INTEGER NOT NULL REFERENCES tasks(id),
                    attempt INTEGER NOT NULL,
                    delay_ms INTEGER NOT NULL,
                    created_at REAL NOT NULL,
                    sent_at REAL
                );
                CREATE INDEX outbox_unsent ON outbox(id) WHERE sent_at IS NULL;
                CREATE TABLE workers (
                    id TEXT PRIMARY KEY,
                    host TEXT NOT NULL,
                    pid INTEGER NOT NULL,
                    version TEXT NOT NULL,
                    state TEXT NOT NULL,
                    stages TEXT NOT NULL,
                    concurrency INTEGER NOT NULL,
                    running TEXT NOT NULL,
                    first_seen REAL NOT NULL,
                    last_seen REAL NOT NULL
                );
                CREATE TABLE audit (
                    id INTEGER PRIMARY KEY,
                    at REAL NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    run TEXT,
                    detail TEXT
                );
                CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                """)
        }
        // CHECK constraints on every state column: a state the code does not
        // know can no longer be written (SQLite adds a CHECK only by
        // rebuilding the table; foreign keys are off during migrations and
        // checked after). The lists are the enums' cases as of this
        // migration; a new state needs a new migration, and a test compares
        // these lists with the enums.
        m.registerMigration("0002-state-checks") { db in
            try db.execute(sql: """
                CREATE TABLE runs_new (
                    id TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    pipeline TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled')),
                    spec_text TEXT NOT NULL,
                    spec_sha256 TEXT NOT NULL,
                    spec_file TEXT NOT NULL,
                    spec_directory TEXT NOT NULL,
                    allowed_roots TEXT NOT NULL,
                    partitions INTEGER NOT NULL,
                    approval_required INTEGER NOT NULL,
                    submitted_by TEXT NOT NULL,
                    submitted_at REAL NOT NULL,
                    finished_at REAL,
                    message TEXT,
                    approved_by TEXT,
                    approved_at REAL
                );
                INSERT INTO runs_new SELECT id, kind, pipeline, state, spec_text, spec_sha256, spec_file, spec_directory,
                    allowed_roots, partitions, approval_required, submitted_by, submitted_at, finished_at, message,
                    approved_by, approved_at FROM runs;
                DROP TABLE runs;
                ALTER TABLE runs_new RENAME TO runs;
                CREATE INDEX runs_by_time ON runs(submitted_at);

                CREATE TABLE tasks_new (
                    id INTEGER PRIMARY KEY,
                    run TEXT NOT NULL REFERENCES runs(id),
                    stage TEXT NOT NULL,
                    idx INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('planned', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
                    attempt INTEGER NOT NULL,
                    max_attempts INTEGER NOT NULL,
                    body BLOB NOT NULL,
                    label TEXT NOT NULL,
                    winner TEXT,
                    result TEXT,
                    last_error TEXT,
                    retries INTEGER NOT NULL DEFAULT 0,
                    planned_at REAL NOT NULL,
                    finished_at REAL,
                    UNIQUE(run, stage, idx)
                );
                INSERT INTO tasks_new SELECT id, run, stage, idx, state, attempt, max_attempts, body, label, winner, result,
                    last_error, retries, planned_at, finished_at FROM tasks;
                DROP TABLE tasks;
                ALTER TABLE tasks_new RENAME TO tasks;
                CREATE INDEX tasks_by_state ON tasks(run, stage, state);

                CREATE TABLE executions_new (
                    id TEXT PRIMARY KEY,
                    task INTEGER NOT NULL REFERENCES tasks(id),
                    attempt INTEGER NOT NULL,
                    worker TEXT,
                    host TEXT,
                    pid INTEGER,
                    delivery_count INTEGER NOT NULL DEFAULT 0,
                    state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'duplicate', 'lost', 'abandoned')),
                    started_at REAL,
                    finished_at REAL,
                    rows_in INTEGER NOT NULL DEFAULT 0,
                    rows_out INTEGER NOT NULL DEFAULT 0,
                    rows_quarantined INTEGER NOT NULL DEFAULT 0,
                    error_kind TEXT,
                    error TEXT
                );
                INSERT INTO executions_new SELECT id, task, attempt, worker, host, pid, delivery_count, state, started_at,
                    finished_at, rows_in, rows_out, rows_quarantined, error_kind, error FROM executions;
                DROP TABLE executions;
                ALTER TABLE executions_new RENAME TO executions;
                CREATE INDEX executions_by_task ON executions(task);

                CREATE TABLE workers_new (
                    id TEXT PRIMARY KEY,
                    host TEXT NOT NULL,
                    pid INTEGER NOT NULL,
                    version TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('running', 'draining', 'stopped')),
                    stages TEXT NOT NULL,
                    concurrency INTEGER NOT NULL,
                    running TEXT NOT NULL,
                    first_seen REAL NOT NULL,
                    last_seen REAL NOT NULL
                );
                INSERT INTO workers_new SELECT id, host, pid, version, state, stages, concurrency, running, first_seen,
                    last_seen FROM workers;
                DROP TABLE workers;
                ALTER TABLE workers_new RENAME TO workers;
                """)
        }
        // Who did it: the authenticated principal who submitted a run, and
        // the audit log's principal, role and outcome (`ok`, or the 401/403
        // of a refused request). The audit table stays append-only: the
        // triggers of 0001 abort any UPDATE or DELETE of it (ADD COLUMN is
        // neither, and keeps them).
        m.registerMigration("0003-audit") { db in
            try db.execute(sql: """
                ALTER TABLE runs ADD COLUMN submitter_principal TEXT;
                ALTER TABLE audit ADD COLUMN principal TEXT;
                ALTER TABLE audit ADD COLUMN role TEXT;
                ALTER TABLE audit ADD COLUMN outcome TEXT;
                CREATE INDEX audit_by_run ON audit(run, id);
                """)
        }
        // Retention (`bis gc`): a chunk whose file was removed keeps its
        // lineage row with `removed_at`; `gc_intents` records each removal
        // before any file goes (`done_at` once it is complete), so a pass
        // killed midway is finished by the next one, and a run whose
        // intermediate chunks are (being) removed cannot be retried.
        // task_inputs_by_chunk: lineage pruning asks whether any task still
        // reads a chunk (the primary key starts with the task).
        m.registerMigration("0004-retention") { db in
            try db.execute(sql: """
                ALTER TABLE chunks ADD COLUMN removed_at REAL;
                CREATE TABLE gc_intents (
                    id INTEGER PRIMARY KEY,
                    kind TEXT NOT NULL CHECK (kind IN ('intermediate', 'version')),
                    path TEXT NOT NULL,
                    run TEXT NOT NULL,
                    dataset TEXT,
                    bytes INTEGER NOT NULL,
                    files INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    planned_at REAL NOT NULL,
                    done_at REAL,
                    outcome TEXT
                );
                CREATE INDEX gc_intents_pending ON gc_intents(id) WHERE done_at IS NULL;
                CREATE INDEX gc_intents_by_run ON gc_intents(run, kind);
                CREATE INDEX chunks_by_run ON chunks(run);
                CREATE INDEX task_inputs_by_chunk ON task_inputs(chunk);
                """)
        }
        // Alerts through an outbox (docs/alerts.md): `alerts` written in the
        // transaction of the change that raised them, `alert_deliveries` one
        // per receiver with its retries; a run's deadline miss (`late_at`)
        // and its resolution. See Alerts/AlertStore.swift.
        m.registerMigration("0005-alerts") { db in
            try db.execute(sql: AlertSchema.migration)
        }
        // Registered pipelines and their schedules (docs/schedules.md): each
        // version of a pipeline's spec text kept with its SHA-256; the
        // schedule's slots the scheduler claimed (`queued` while
        // max_active_runs is reached, `waiting_for_input` while `wait_for:`
        // waits for the globs to match, `started` with the run, `refused`
        // when the run could not start), one row per (pipeline, slot). A run
        // records the version it ran, its slot (UTC ISO 8601), what started
        // it and its parameters; at most one scheduled run per (pipeline,
        // slot), so a coordinator killed mid catch-up never starts a slot twice.
        // A backfill (`bis backfill`) is one object with its slots.
        m.registerMigration("0006-schedules") { db in
            try db.execute(sql: """
                CREATE TABLE pipelines (
                    name TEXT PRIMARY KEY,
                    current_version INTEGER NOT NULL,
                    paused INTEGER NOT NULL DEFAULT 0,
                    registered_at REAL NOT NULL,
                    registered_by TEXT NOT NULL,
                    last_slot REAL
                );
                CREATE TABLE pipeline_versions (
                    pipeline TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    spec_text TEXT NOT NULL,
                    spec_sha256 TEXT NOT NULL,
                    spec_file TEXT NOT NULL,
                    spec_directory TEXT NOT NULL,
                    allowed_roots TEXT NOT NULL,
                    added_at REAL NOT NULL,
                    added_by TEXT NOT NULL,
                    PRIMARY KEY(pipeline, version)
                );
                CREATE TABLE schedule_slots (
                    pipeline TEXT NOT NULL,
                    slot TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('queued', 'waiting_for_input', 'started', 'refused')),
                    run TEXT,
                    message TEXT,
                    created_at REAL NOT NULL,
                    waiting_since REAL,
                    checked_at REAL,
                    PRIMARY KEY(pipeline, slot)
                );
                CREATE INDEX schedule_slots_open ON schedule_slots(pipeline, slot) WHERE state IN ('queued', 'waiting_for_input');
                CREATE TABLE backfills (
                    id TEXT PRIMARY KEY,
                    pipeline TEXT NOT NULL,
                    from_day TEXT NOT NULL,
                    to_day TEXT NOT NULL,
                    max_active INTEGER NOT NULL,
                    rerun INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('running', 'done', 'cancelled')),
                    created_at REAL NOT NULL,
                    created_by TEXT NOT NULL
                );
                CREATE TABLE backfill_slots (
                    backfill TEXT NOT NULL REFERENCES backfills(id),
                    slot TEXT NOT NULL,
                    local_date TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('queued', 'started', 'skipped', 'refused', 'cancelled')),
                    run TEXT,
                    message TEXT,
                    PRIMARY KEY(backfill, slot)
                );
                ALTER TABLE runs ADD COLUMN pipeline_version INTEGER;
                ALTER TABLE runs ADD COLUMN slot TEXT;
                ALTER TABLE runs ADD COLUMN trigger TEXT CHECK (trigger IS NULL OR trigger IN ('schedule', 'manual', 'backfill'));
                ALTER TABLE runs ADD COLUMN params TEXT;
                CREATE UNIQUE INDEX runs_one_per_slot ON runs(pipeline, slot) WHERE trigger = 'schedule';
                CREATE INDEX runs_by_pipeline ON runs(pipeline, submitted_at);
                """)
        }
        return m.migrator
    }

    struct Migrations {
        var migrator = DatabaseMigrator()
        let skipping: Set<String>

        mutating func registerMigration(_ name: String, migrate: @escaping @Sendable (Database) throws -> Void) {
            if !skipping.contains(name) { migrator.registerMigration(name, migrate: migrate) }
        }
    }

    /// The names of the migrations applied, in order.
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try Self.migrator.appliedMigrations(db) }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.write(body)
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.read(body)
    }
}

/// Small helpers over GRDB rows. `run`, `row` and `value` use cached
/// statements: the intake runs the same few statements for every event, and
/// compiling them again each time cost more than running them.
extension Database {
    func run(_ sql: String, _ arguments: StatementArguments = []) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }

    func row(_ sql: String, _ arguments: StatementArguments = []) throws -> Row? {
        try Row.fetchOne(cachedStatement(sql: sql), arguments: arguments)
    }

    func value<T: DatabaseValueConvertible & StatementColumnConvertible>(_ sql: String, _ arguments: StatementArguments = []) throws -> T? {
        try T.fetchOne(cachedStatement(sql: sql), arguments: arguments)
    }

    func audit(actor: String, action: String, run: String?, detail: String? = nil, at: Double) throws {
        try self.run("INSERT INTO audit(at, actor, action, run, detail) VALUES (?, ?, ?, ?, ?)", [at, actor, action, run, detail])
    }

    /// An operator's action through the API, with who asked: the principal
    /// and role (`anonymous` and none without auth), outcome `ok`.
    func audit(actor: String, action: String, run: String?, detail: String? = nil, at: Double, caller: Caller) throws {
        try self.run("""
            INSERT INTO audit(at, actor, action, run, detail, principal, role, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, 'ok')
            """, [at, actor, action, run, detail, caller.principalName, caller.roleName])
    }

    /// The chunk's id, inserting it when new (a chunk is its path and sha256).
    func chunkID(_ c: ChunkRef, run: String?) throws -> Int64 {
        try self.run("""
            INSERT INTO chunks(path, sha256, rows, bytes, kind, partition, name, run) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(path, sha256) DO NOTHING
            """, [c.path, c.sha256, c.rows, c.bytes, c.kind.rawValue, c.partition, c.name, run])
        return try value("SELECT id FROM chunks WHERE path = ? AND sha256 = ?", [c.path, c.sha256])!
    }
}

/// Chunk rows back as `ChunkRef`s.
extension ChunkRef {
    init(row: Row) {
        self.init(path: row["path"], sha256: row["sha256"], rows: row["rows"], bytes: row["bytes"],
                  kind: ChunkRef.Kind(rawValue: row["kind"]) ?? .data, partition: row["partition"], name: row["name"])
    }
}
