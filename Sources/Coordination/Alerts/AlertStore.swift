import FleetCore
import Foundation
import GRDB

// Alerts in the lineage store (migration 0005-alerts, docs/alerts.md).
//
// An alert row is written in the same transaction as the state change that
// causes it (a run failed, a run waits for approval, a task dead-lettered …),
// with an idempotency key (run + event [+ task]): the row exists exactly when
// the change committed, and never twice. The alert sender (`AlertSender`)
// later routes each alert to its receivers (one `alert_deliveries` row per
// receiver, `UNIQUE(alert, receiver)`) and sends them with retries; a
// delivery is marked sent once. A coordinator killed between the commit and
// the send sends at its next start.
//
// The migration also adds the execution state `timed_out` (an execution
// stopped past its stage's timeout): SQLite adds a CHECK only by rebuilding
// the table, as 0002 did.
//
// 0005 was inserted before 0006 (schedules) after 0006 had shipped: stores
// made before it apply 0006 first, then 0005 (GRDB runs an inserted
// migration; StateMachineTests covers that path). So the column order of
// `runs` differs between fresh stores (late_* before pipeline_version, slot,
// trigger, params) and upgraded ones (after). Everything names its columns;
// a future rebuild of `runs` must do so too, never `INSERT … SELECT *`.

enum AlertSchema {
    static let migration = """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            event TEXT NOT NULL CHECK (event IN ('run_failed', 'run_succeeded', 'awaiting_approval', 'deadline_missed',
                                                 'task_timed_out', 'task_dead_lettered', 'worker_lost', 'queue_stalled')),
            run TEXT,
            pipeline TEXT,
            task TEXT,
            state TEXT,
            message TEXT NOT NULL,
            resolves INTEGER REFERENCES alerts(id),
            created_at REAL NOT NULL,
            routed_at REAL
        );
        CREATE INDEX alerts_unrouted ON alerts(id) WHERE routed_at IS NULL;
        CREATE INDEX alerts_by_run ON alerts(run, id);
        CREATE TABLE alert_deliveries (
            id INTEGER PRIMARY KEY,
            alert INTEGER NOT NULL REFERENCES alerts(id),
            receiver TEXT NOT NULL,
            target TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL,
            sent_at REAL,
            failed_at REAL,
            last_error TEXT,
            UNIQUE(alert, receiver)
        );
        CREATE INDEX alert_deliveries_due ON alert_deliveries(next_at) WHERE sent_at IS NULL AND failed_at IS NULL;
        ALTER TABLE runs ADD COLUMN late_at REAL;
        ALTER TABLE runs ADD COLUMN late_resolved_at REAL;

        CREATE TABLE executions_new (
            id TEXT PRIMARY KEY,
            task INTEGER NOT NULL REFERENCES tasks(id),
            attempt INTEGER NOT NULL,
            worker TEXT,
            host TEXT,
            pid INTEGER,
            delivery_count INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'duplicate', 'lost', 'abandoned', 'timed_out')),
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
        """
}

extension Database {
    /// Records an alert in the caller's transaction, unless one with the
    /// same key exists (the key makes it idempotent: a redelivered event or
    /// a second pass raises nothing twice). Returns whether it was new.
    @discardableResult
    func raiseAlert(_ event: AlertEvent, run: String?, pipeline: String?, task: String? = nil, state: String? = nil,
                    message: String, key: String? = nil, resolves: Int64? = nil, at now: Double) throws -> Bool {
        let k = key ?? [run ?? "-", event.rawValue, task].compactMap { $0 }.joined(separator: "/")
        try self.run("""
            INSERT INTO alerts(key, event, run, pipeline, task, state, message, resolves, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING
            """, [k, event.rawValue, run, pipeline, task, state, message, resolves, now])
        return changesCount > 0
    }

    /// Raises `event` for run `id`, reading its pipeline and state. A
    /// run-level event (failed, succeeded, awaiting approval) is raised by a
    /// state move that happens once per move, and may happen again after a
    /// retry or an approval: its key counts the run's earlier ones
    /// (`RUN/run_failed/2` after a retry failed again).
    @discardableResult
    func raiseRunAlert(_ event: AlertEvent, run id: String, task: String? = nil, key: String? = nil, message: String,
                       at now: Double) throws -> Bool {
        let row = try self.row("SELECT pipeline, state FROM runs WHERE id = ?", [id])
        var k = key
        if k == nil, task == nil {
            let earlier: Int = try value("SELECT COUNT(*) FROM alerts WHERE run = ? AND event = ? AND resolves IS NULL",
                                         [id, event.rawValue]) ?? 0
            k = "\(id)/\(event.rawValue)/\(earlier + 1)"
        }
        return try raiseAlert(event, run: id, pipeline: row?["pipeline"], task: task, state: row?["state"],
                              message: message, key: k, at: now)
    }
}

extension CoordinatorEngine {
    /// `GET /api/alerts`: the newest `limit` alerts (of `run`), newest first, with their deliveries.
    public func alerts(run: String?, limit: Int) async throws -> [AlertView] {
        try await store.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT * FROM alerts WHERE (? IS NULL OR run = ?) ORDER BY id DESC LIMIT ?
                """, arguments: [run, run, limit])
            return try rows.map { row in
                let a = StoredAlert(row)
                let deliveries = try Row.fetchAll(db, sql: "SELECT * FROM alert_deliveries WHERE alert = ? ORDER BY id",
                                                  arguments: [a.id]).map { d -> AlertDeliveryView in
                    let sentAt: Double? = d["sent_at"], failedAt: Double? = d["failed_at"], nextAt: Double = d["next_at"]
                    let state: AlertDeliveryView.State = sentAt != nil ? .sent : failedAt != nil ? .failed : .pending
                    return AlertDeliveryView(receiver: d["receiver"], target: d["target"], state: state, attempts: d["attempts"],
                                             sentAt: sentAt.map(Date.init(timeIntervalSince1970:)),
                                             nextAttemptAt: state == .pending ? Date(timeIntervalSince1970: nextAt) : nil,
                                             lastError: d["last_error"])
                }
                return AlertView(key: a.key, event: a.event, resolved: a.resolves != nil || a.key.hasSuffix("/resolved"),
                                 run: a.run, pipeline: a.pipeline, task: a.task, state: a.state, message: a.message,
                                 raisedAt: Date(timeIntervalSince1970: a.createdAt), deliveries: deliveries)
            }
        }
    }
}
