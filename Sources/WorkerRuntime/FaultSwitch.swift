import FleetCore
import Foundation

/// TEST-ONLY fault injection, off unless `BIS_TEST_FAULT` is set: makes a
/// worker crash, fail or stall on chosen tasks so that tests of the commit
/// protocol (redelivery, dead-lettering, retries) can provoke them from the
/// outside. Never set it in production.
///
/// Only the `bis-worker` command reads the variable and wires the switch
/// (`FleetWorker` takes none by default), and only it says what a crash is
/// (`crash`: it kills its own process); library code never ends the process.
///
/// `BIS_TEST_FAULT` is a comma-separated list of `ACTION:TARGET`:
/// - `crash` — `crash` runs at once, before any result (bis-worker: the
///   process dies with SIGKILL, as a real crash would);
/// - `crash-after-result` — the task executes and its result is published and
///   confirmed, then `crash` runs before the ack: the broker redelivers the
///   task and the next execution's result is a duplicate;
/// - `fail` — the execution fails permanently;
/// - `transient` — the execution fails transiently;
/// - `sleep=MS` — sleeps MS milliseconds before executing (a window in which
///   a test can kill the worker mid-task); a stage timeout stops the sleep
///   as it stops an operator between batches;
/// - `hang=MS` — sleeps MS milliseconds ignoring a stage timeout (an
///   operator that does not return: the worker exits after its grace).
///
/// TARGET is `[RUN_PREFIX/]STAGE[/INDEX]`: `crash:normalize/1`,
/// `fail:orders-daily/validate`, `sleep=3000:ingest`. The first rule that
/// matches a task applies (sleep rules first, then the others).
public struct FaultSwitch: Sendable, Hashable {
    public static func == (a: FaultSwitch, b: FaultSwitch) -> Bool { a.rules == b.rules }
    public func hash(into hasher: inout Hasher) { hasher.combine(rules) }

    public enum Action: Sendable, Hashable {
        case crash
        case crashAfterResult
        case fail
        case transient
        case sleep(milliseconds: Int)
        case hang(milliseconds: Int)
    }

    public struct Rule: Sendable, Hashable {
        public var action: Action
        /// The run id must start with this, when set.
        public var runPrefix: String?
        public var stage: Stage
        public var index: Int?

        public init(action: Action, runPrefix: String? = nil, stage: Stage, index: Int? = nil) {
            self.action = action
            self.runPrefix = runPrefix
            self.stage = stage
            self.index = index
        }

        public func matches(_ task: TaskMessage) -> Bool {
            task.stage == stage && (index == nil || index == task.index)
                && (runPrefix.map { task.run.hasPrefix($0) } ?? true)
        }
    }

    public var rules: [Rule]
    /// What a crash rule does; nil (a switch nobody wired to a process):
    /// the execution fails transiently instead, naming the rule.
    public var crash: (@Sendable () -> Void)?

    public init(rules: [Rule], crash: (@Sendable () -> Void)? = nil) {
        self.rules = rules
        self.crash = crash
    }

    /// Parses `BIS_TEST_FAULT`'s syntax; errors name the bad entry.
    public init(parsing text: String, crash: (@Sendable () -> Void)? = nil) throws(TaskFailure) {
        self.crash = crash
        var rules: [Rule] = []
        for entry in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            func bad(_ why: String) -> TaskFailure {
                TaskFailure(.permanent, "BIS_TEST_FAULT entry '\(entry)': \(why); use ACTION:[RUN_PREFIX/]STAGE[/INDEX] "
                            + "with ACTION crash, crash-after-result, fail, transient, sleep=MS or hang=MS")
            }
            guard let colon = entry.firstIndex(of: ":") else { throw bad("no ':'") }
            let actionText = String(entry[..<colon])
            let action: Action
            switch actionText {
            case "crash": action = .crash
            case "crash-after-result": action = .crashAfterResult
            case "fail": action = .fail
            case "transient": action = .transient
            default:
                if actionText.hasPrefix("hang="), let ms = Int(actionText.dropFirst(5)), ms >= 0 {
                    action = .hang(milliseconds: ms)
                    break
                }
                guard actionText.hasPrefix("sleep="), let ms = Int(actionText.dropFirst(6)), ms >= 0 else {
                    throw bad("unknown action '\(actionText)'")
                }
                action = .sleep(milliseconds: ms)
            }
            var parts = entry[entry.index(after: colon)...].split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            var index: Int?
            if parts.count > 1, let last = parts.last, let n = Int(last) {
                index = n
                parts.removeLast()
            }
            guard let stageText = parts.last, let stage = Stage(rawValue: stageText) else {
                throw bad("no stage named '\(parts.last ?? "")'")
            }
            parts.removeLast()
            guard parts.count <= 1 else { throw bad("too many '/'") }
            if let p = parts.first, p.isEmpty { throw bad("empty run prefix") }
            rules.append(Rule(action: action, runPrefix: parts.first, stage: stage, index: index))
        }
        self.rules = rules
    }

    /// From `BIS_TEST_FAULT`; nil when unset or empty. A malformed value is
    /// an error naming the bad entry (the command reports it and exits 2).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                       crash: (@Sendable () -> Void)? = nil) throws(TaskFailure) -> FaultSwitch? {
        guard let text = environment["BIS_TEST_FAULT"], !text.isEmpty else { return nil }
        return try FaultSwitch(parsing: text, crash: crash)
    }

    /// The sleep before `task`, if a rule asks for one.
    public func delay(for task: TaskMessage) -> Int? {
        for r in rules where r.matches(task) {
            if case .sleep(let ms) = r.action { return ms }
        }
        return nil
    }

    /// The uninterruptible sleep before `task`, if a rule asks for one.
    public func hang(for task: TaskMessage) -> Int? {
        for r in rules where r.matches(task) {
            if case .hang(let ms) = r.action { return ms }
        }
        return nil
    }

    /// Whether a rule aims at one of `task`'s fused follower stages
    /// (`TaskMessage.fused`): the worker then runs the task unfused, so the
    /// fault meets that stage's own task.
    public func targetsFollower(of task: TaskMessage) -> Bool {
        (task.fused ?? []).contains { stage in
            var own = task
            own.stage = stage
            own.fused = nil
            return rules.contains { $0.matches(own) }
        }
    }

    /// The crash or failure `task` meets, if any.
    public func fault(for task: TaskMessage) -> Action? {
        rules.first { r in
            if case .sleep = r.action { return false }
            if case .hang = r.action { return false }
            return r.matches(task)
        }?.action
    }

    /// Applies the rules to `task` just before it executes: sleeps, crashes,
    /// or throws the failure asked for.
    public func apply(to task: TaskMessage, cancellation: ExecutionCancellation? = nil) async throws(TaskFailure) {
        if let ms = delay(for: task) {
            // Like an operator between batches: a stage timeout stops the sleep.
            let end = ContinuousClock.now + .milliseconds(ms)
            while ContinuousClock.now < end {
                if let message = cancellation?.cancelled { throw TaskFailure(.transient, message, timedOut: true) }
                try? await Task.sleep(for: min(.milliseconds(50), end - ContinuousClock.now))
            }
        }
        if let ms = hang(for: task) { try? await Task.sleep(for: .milliseconds(ms)) }   // deaf to a timeout
        switch fault(for: task) {
        case .crash?: try crashNow(task)
        case .fail?: throw TaskFailure(.permanent, "BIS_TEST_FAULT: injected permanent failure of \(task.taskID)")
        case .transient?: throw TaskFailure(.transient, "BIS_TEST_FAULT: injected transient failure of \(task.taskID)")
        default: break
        }
    }

    /// Applies `crash-after-result` once `task`'s result is confirmed and
    /// before its delivery is acked: crashes when a rule asks for it (with
    /// no crash wired, nothing happens: the result is already out).
    public func applyAfterResult(of task: TaskMessage) {
        if fault(for: task) == .crashAfterResult { crash?() }
    }

    private func crashNow(_ task: TaskMessage) throws(TaskFailure) {
        guard let crash else {
            throw TaskFailure(.transient, "BIS_TEST_FAULT: injected crash of \(task.taskID), but no crash is wired")
        }
        crash()
    }
}
