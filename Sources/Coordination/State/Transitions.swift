import FleetCore

// The coordinator's state machine, written down once.
//
// Runs, tasks and executions each have a state (the enums `RunState`,
// `TaskState`, `ExecutionState`; strings in SQLite, with CHECK constraints
// from migration 0002). The tables below are the only moves between them:
// each names the states it leaves from, the state it reaches and who makes
// it. `StateMachine.swift` beside this file holds the only code that writes
// a `state` column, and builds every UPDATE's `WHERE state IN (…)` from these
// tables, so a move the table does not allow changes nothing.
//
// Where the decisions behind the moves are made:
// - retries (a transient failure or lost execution with attempts left) and a
//   run failing because a task failed for good: `RetryOrFail.swift`; the
//   backoff: `RetryPolicy` (FleetWire);
// - the quality gate failing a run: `Planner.swift`, `decideGateAndPublish`,
//   over `GateDecision` (Stages);
// - what is planned next, approval, success: `Planner.swift`, `advance`;
// - what worker events do: `Intake.swift`;
// - operator actions (approve, retry, cancel): `Operations.swift`;
// - the time of day: `CoordinatorOptions.clock`, a `WallClock` (FleetWire).

/// One allowed move: from any of `from` to `to`, made by `by`.
public struct Transition<State: Hashable & Sendable>: Sendable {
    public let from: Set<State>
    public let to: State
    /// Who makes the move (for the reader; shown by `bis` nowhere).
    public let by: String
}

/// The moves of a run.
public enum RunMove: String, CaseIterable, Sendable {
    case start, awaitApproval, approve, succeed, fail, cancel, retry

    public var transition: Transition<RunState> {
        switch self {
        case .start:
            return Transition(from: [.pending], to: .running,
                              by: "submit, in the transaction that plans the first tasks")
        case .awaitApproval:
            return Transition(from: [.running], to: .awaitingApproval,
                              by: "the planner, when report is done and deliver needs an approval not yet given")
        case .approve:
            return Transition(from: [.awaitingApproval, .running], to: .running,
                              by: "an operator (`bis approve`); a running run may be approved ahead of time")
        case .succeed:
            return Transition(from: [.running], to: .succeeded,
                              by: "the planner, when the run's last task committed")
        case .fail:
            return Transition(from: [.pending, .running, .awaitingApproval], to: .failed,
                              by: "event intake (a task failed for good) or the planner (the quality gate failed)")
        case .cancel:
            return Transition(from: [.pending, .running, .awaitingApproval, .failed], to: .cancelled,
                              by: "an operator (`bis cancel`)")
        case .retry:
            return Transition(from: [.failed], to: .running,
                              by: "an operator (`bis retry`): the failed tasks again, committed outputs reused")
        }
    }
}

/// The moves of a task. A task is created `planned` (with its outbox row)
/// by the planner.
public enum TaskMove: String, CaseIterable, Sendable {
    case queue, start, commitWinner, scheduleRetry, fail, cancel, retry

    public var transition: Transition<TaskState> {
        switch self {
        case .queue:
            return Transition(from: [.planned], to: .queued,
                              by: "the outbox dispatcher, once the broker confirmed the message")
        case .start:
            return Transition(from: [.planned, .queued], to: .running,
                              by: "event intake, at a worker's `started` event")
        case .commitWinner:
            return Transition(from: [.planned, .queued, .running], to: .succeeded,
                              by: "event intake, at the first success (the task's winner)")
        case .scheduleRetry:
            return Transition(from: [.planned, .queued, .running], to: .planned,
                              by: "event intake, at a transient failure or lost execution with attempts left (a delayed retry)")
        case .fail:
            return Transition(from: [.planned, .queued, .running], to: .failed,
                              by: "event intake, at a permanent failure or the last attempt's")
        case .cancel:
            return Transition(from: [.planned, .queued, .running], to: .cancelled,
                              by: "an operator (`bis cancel`), or the run failing (its tasks not yet sent)")
        case .retry:
            return Transition(from: [.failed, .cancelled], to: .planned,
                              by: "an operator (`bis retry`), with a fresh attempt budget")
        }
    }
}

/// The moves of an execution. An execution is created `running` (a
/// worker's `started` event, or its result when no `started` came first) or
/// `lost` (a dead-lettered message) by event intake.
public enum ExecutionMove: String, CaseIterable, Sendable {
    case succeed, recordDuplicate, fail, abandon, timeOut

    public var transition: Transition<ExecutionState> {
        switch self {
        case .succeed:
            return Transition(from: [.running, .abandoned], to: .succeeded,
                              by: "event intake: the task's first success (an abandoned one's late result included)")
        case .recordDuplicate:
            return Transition(from: [.running, .abandoned], to: .duplicate,
                              by: "event intake: a success after the task's winner, or of a cancelled run (files reclaimed)")
        case .fail:
            return Transition(from: [.running, .abandoned], to: .failed,
                              by: "event intake: the worker reported a failure")
        case .timeOut:
            return Transition(from: [.running, .abandoned], to: .timedOut,
                              by: "event intake: the worker reported it stopped past its stage's timeout")
        case .abandon:
            return Transition(from: [.running], to: .abandoned,
                              by: "event intake: the task settled while this execution had not reported (its worker most likely died)")
        }
    }
}

extension Transition where State: RawRepresentable, State.RawValue == String {
    /// `state IN ('a', 'b')`, for the UPDATE that makes the move. The states
    /// are the enums' own names: no caller text reaches the SQL.
    var fromClause: String {
        "state IN (" + from.map { "'\($0.rawValue)'" }.sorted().joined(separator: ", ") + ")"
    }

    func allows(_ state: State) -> Bool { from.contains(state) }
}
