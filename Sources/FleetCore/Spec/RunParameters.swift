import Foundation
import Yams

/// One `params:` entry: `region: {type: string, default: emea}`.
public struct ParamSpec: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case string, int, date, bool
    }
    public var name: String
    public var type: Kind
    /// nil: the parameter must be given per run (`--param NAME=VALUE`).
    public var defaultValue: String?

    public init(name: String, type: Kind, defaultValue: String?) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
    }

    /// Why `value` is not a valid value of this parameter, or nil.
    public func problem(with value: String) -> String? {
        switch type {
        case .string:
            // Values are pasted into YAML, globs and expression literals:
            // nothing that could end a quote, start a comment or widen a glob.
            let ok = !value.isEmpty && value.count <= 200 && value.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "_-.:@+ /".unicodeScalars.contains($0)
            } && !value.contains("..")
            return ok ? nil : "parameter '\(name)' is a string of 1 to 200 letters, digits, spaces and _ - . : @ + / "
                + "(no '..'), not '\(value)'"
        case .int:
            return Int(value) == nil ? "parameter '\(name)' is an int, not '\(value)'" : nil
        case .date:
            return LocalDay.parse(value) == nil ? "parameter '\(name)' is a date (YYYY-MM-DD), not '\(value)'" : nil
        case .bool:
            return value == "true" || value == "false" ? nil : "parameter '\(name)' is true or false, not '\(value)'"
        }
    }
}

/// The parts of a spec that decide how a registered pipeline runs
/// (`schedule:` and `params:`), read before `${...}` is filled in.
public struct SpecHeader: Sendable, Hashable {
    public var schedule: ScheduleSpec?
    public var params: [ParamSpec]
    /// `wait_for: {files: true, timeout: 2h}`: a scheduled run whose globs
    /// match nothing waits (checked every minute) up to `timeout` seconds.
    public var waitForFiles = false
    public var waitTimeoutSeconds: Double = SpecHeader.defaultWaitTimeout
    public static let defaultWaitTimeout: Double = 7200

    public init(schedule: ScheduleSpec? = nil, params: [ParamSpec] = []) {
        self.schedule = schedule
        self.params = params
    }

    /// The schedule's zone, UTC without one: where `${date}` is read.
    public var timezone: TimeZone { schedule?.timezone ?? TimeZone(identifier: "UTC")! }

    /// Reads `schedule:` and `params:` of a spec text (the rest is not
    /// checked here); errors with their positions.
    public static func read(yaml: String, file: String) throws(SpecErrors) -> SpecHeader {
        // The same bound as `PipelineSpec.parse`, before Yams composes:
        // this runs first, on the text with its placeholders.
        if let at = SpecSize.aliasOverflow(yaml) { throw SpecErrors([SpecSize.overflowError(file: file, at: at)]) }
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch { throw SpecErrors([PipelineSpec.yamlError(error, file: file)]) }
        guard let root, let map = root.mapping else { return SpecHeader() }
        var loader = SpecLoader(yaml: yaml, file: file, checker: nil)
        let entries = loader.mappingEntries(map)
        let header = loader.loadHeader(entries)
        let errors = loader.sink.sorted()
        guard errors.isEmpty else { throw SpecErrors(errors) }
        return header
    }
}

extension SpecLoader {
    static let scheduleKeys = ["cron", "timezone", "start", "end", "catchup", "max_active_runs"]

    /// `schedule:` and `params:` of the top-level entries.
    mutating func loadHeader(_ entries: [Entry]) -> SpecHeader {
        var header = SpecHeader()
        if let entry = entries.first(where: { $0.key == "schedule" }) { header.schedule = loadSchedule(entry.value) }
        if let entry = entries.first(where: { $0.key == "wait_for" }), let fields = mapping(entry.value, "'wait_for'") {
            checkKeys(fields, allowed: ["files", "timeout"], in: "wait_for")
            if let f = fields.first(where: { $0.key == "files" }), let value = bool(f.value, "'files' in wait_for") {
                header.waitForFiles = value
            }
            if let t = fields.first(where: { $0.key == "timeout" }), let text = string(t.value, "'timeout' in wait_for") {
                if let seconds = Self.duration(text), seconds > 0, seconds <= 7 * 86400 {
                    header.waitTimeoutSeconds = seconds
                } else {
                    sink.add(t.value.location, "'timeout' in wait_for must be a duration up to 7d such as 90s, 30m, 2h or 1d, not '\(text)'")
                }
            }
        }
        if let entry = entries.first(where: { $0.key == "params" }), !entry.value.isEmptyPlainScalar,
           let items = mapping(entry.value, "'params'") {
            for item in items {
                let name = item.key
                if name == "date" || !isParamName(name) {
                    sink.add(item.keyNode.location, name == "date"
                             ? "'date' is the run's slot date already; name the parameter otherwise"
                             : "parameter name '\(name)' may use only lower-case letters, digits and '_', starting with a letter")
                    continue
                }
                guard let fields = mapping(item.value, "parameter '\(name)'") else { continue }
                checkKeys(fields, allowed: ["type", "default"], in: "parameter '\(name)'")
                var kind = ParamSpec.Kind.string
                if let t = fields.first(where: { $0.key == "type" }), let text = string(t.value, "'type' of parameter '\(name)'") {
                    if let k = ParamSpec.Kind(rawValue: text) { kind = k } else {
                        sink.add(t.value.location, "'type' of parameter '\(name)' must be string, int, date or bool, not '\(text)'")
                    }
                }
                var param = ParamSpec(name: name, type: kind, defaultValue: nil)
                if let d = fields.first(where: { $0.key == "default" }), let text = string(d.value, "'default' of parameter '\(name)'") {
                    if let problem = param.problem(with: text) { sink.add(d.value.location, problem) } else { param.defaultValue = text }
                }
                header.params.append(param)
            }
        }
        return header
    }

    /// `90s`, `30m`, `2h`, `1d` in seconds.
    static func duration(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        guard let unit = text.last.flatMap({ units[$0] }), let n = Double(text.dropLast()), n.isFinite else { return nil }
        return n * unit
    }

    func isParamName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    mutating func loadSchedule(_ node: Node) -> ScheduleSpec? {
        guard let entries = mapping(node, "'schedule'") else { return nil }
        checkKeys(entries, allowed: Self.scheduleKeys, in: "schedule")
        let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        guard let cronEntry = byKey["cron"] else {
            reportMissing("cron", in: entries, allowed: Self.scheduleKeys, at: node.location,
                          "schedule needs 'cron' (five fields: minute hour day-of-month month day-of-week)")
            return nil
        }
        // A bad cron line is reported, and the other keys are still checked.
        var cronOK = true
        var schedule = ScheduleSpec(cron: try! CronExpression("0 0 * * *"))
        if let cronText = string(cronEntry.value, "'cron' in schedule") {
            do throws(CronExpression.ParseError) {
                schedule.cron = try CronExpression(cronText)
            } catch {
                var at = cronEntry.value.location
                at.column += error.offset + (cronEntry.value.isQuotedScalar ? 1 : 0)
                sink.add(at, "in 'cron': \(error.message)")
                cronOK = false
            }
        } else {
            cronOK = false
        }
        if let e = byKey["timezone"], let name = string(e.value, "'timezone' in schedule") {
            if let zone = TimeZone(identifier: name), name.contains("/") || name == "UTC" {
                schedule.timezone = zone
            } else {
                sink.add(e.value.location, "unknown time zone '\(name)'; use an IANA name such as Europe/Helsinki or UTC")
            }
        }
        for key in ["start", "end"] {
            guard let e = byKey[key], let text = string(e.value, "'\(key)' in schedule") else { continue }
            guard let day = LocalDay.parse(text) else {
                sink.add(e.value.location, "'\(key)' in schedule must be a date YYYY-MM-DD (in the schedule's time zone), not '\(text)'")
                continue
            }
            if key == "start" { schedule.startDay = day } else { schedule.endDay = day }
        }
        if let s = schedule.startDay, let e = schedule.endDay, e < s, let entry = byKey["end"] {
            sink.add(entry.value.location, "'end' in schedule is before 'start'")
        }
        if let e = byKey["catchup"], let text = string(e.value, "'catchup' in schedule") {
            if let c = ScheduleSpec.CatchUp(rawValue: text) { schedule.catchup = c } else {
                sink.add(e.value.location, "'catchup' in schedule must be none, latest or all, not '\(text)'")
            }
        }
        if let e = byKey["max_active_runs"], let n = int(e.value, "'max_active_runs' in schedule", range: 1...1000) {
            schedule.maxActiveRuns = n
        }
        return cronOK ? schedule : nil
    }
}

/// `${date}`, `${date-N}` and `${param}` in a spec's text.
public enum SpecTemplate {
    /// One `${...}` with where it was written.
    public struct Placeholder: Sendable, Hashable {
        public var name: String
        /// For `${date-N}`: N.
        public var daysBack: Int
        public var range: Range<String.Index>
        public var location: SpecLocation
    }

    /// The placeholders of `text`, on every line (YAML comments too).
    public static func placeholders(_ text: String) -> [Placeholder] { scan(text).placeholders }

    /// The placeholders of `text`, and where a `${` has no `}` after it on
    /// its line. `$${` is a literal `${`, not a placeholder: it stays as
    /// it is in the filled-in text (so filling in again changes nothing)
    /// and `unescape` turns it into `${` for the YAML reader.
    static func scan(_ text: String) -> (placeholders: [Placeholder], unclosed: [SpecLocation]) {
        var out: [Placeholder] = []
        var unclosed: [SpecLocation] = []
        var lineStart = text.startIndex
        var line = 1
        while lineStart < text.endIndex {
            let lineEnd = text[lineStart...].firstIndex(of: "\n") ?? text.endIndex
            let content = text[lineStart..<lineEnd]
            var i = content.startIndex
            while let open = content[i...].range(of: "${") {
                let column = text.unicodeScalars[lineStart..<open.lowerBound].count + 1
                if open.lowerBound > content.startIndex, content[content.index(before: open.lowerBound)] == "$" {
                    i = open.upperBound
                    continue
                }
                guard let close = content[open.upperBound...].firstIndex(of: "}") else {
                    unclosed.append(SpecLocation(line: line, column: column))
                    break
                }
                let inner = String(content[open.upperBound..<close]).trimmingCharacters(in: .whitespaces)
                var name = inner, back = 0
                if inner.hasPrefix("date-"), let n = Int(inner.dropFirst(5)), n >= 0 { name = "date"; back = n }
                out.append(Placeholder(name: name, daysBack: back, range: open.lowerBound..<content.index(after: close),
                                       location: SpecLocation(line: line, column: column)))
                i = content.index(after: close)
            }
            line += 1
            lineStart = lineEnd < text.endIndex ? text.index(after: lineEnd) : text.endIndex
        }
        return (out, unclosed)
    }

    /// A filled-in text as the YAML reader takes it: each `$${` a literal `${`.
    public static func unescape(_ text: String) -> String {
        text.contains("$${") ? text.replacingOccurrences(of: "$${", with: "${") : text
    }

    /// The text with every placeholder filled in: `date` (`YYYY-MM-DD`) for
    /// `${date}` and `${date-N}`, `values` or the defaults for parameters.
    /// Unknown names, parameters without a value and bad values are errors
    /// (with the placeholder's position where there is one). Returns the
    /// filled text and every parameter's value (`date` included).
    public static func expand(_ text: String, file: String, header: SpecHeader, date: String,
                              values: [String: String] = [:]) throws(SpecErrors) -> (text: String, values: [String: String]) {
        var errors: [SpecError] = []
        let declared = Dictionary(header.params.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for name in values.keys.sorted() where declared[name] == nil {
            let known = header.params.map(\.name)
            errors.append(SpecError(file: file, location: nil, message: "--param \(name): the spec declares no parameter '\(name)'"
                                    + (known.isEmpty ? " (it has no 'params:')" : "; it has \(known.joined(separator: ", "))")))
        }
        var resolved: [String: String] = ["date": date]
        for p in header.params {
            if let v = values[p.name] {
                if let problem = p.problem(with: v) { errors.append(SpecError(file: file, location: nil, message: problem)) } else { resolved[p.name] = v }
            } else if let d = p.defaultValue {
                resolved[p.name] = d
            }
        }
        guard let day = LocalDay.parse(date) else {
            throw SpecErrors([SpecError(file: file, location: nil, message: "the run's date '\(date)' is not YYYY-MM-DD")])
        }
        var out = text
        let found = scan(text)
        for at in found.unclosed {
            errors.append(SpecError(file: file, location: at,
                                    message: "'${' without a closing '}' on its line; write '$${' for a literal '${'"))
        }
        for p in found.placeholders.reversed() {
            let value: String
            if p.name == "date" {
                value = LocalDay.text(day - p.daysBack)
            } else if let v = resolved[p.name], declared[p.name] != nil {
                value = v
            } else if declared[p.name] != nil {
                errors.append(SpecError(file: file, location: p.location,
                                        message: "parameter '\(p.name)' has no default and no value was given (--param \(p.name)=VALUE)"))
                continue
            } else {
                let known = ["date", "date-N"] + header.params.map(\.name)
                errors.append(SpecError(file: file, location: p.location, message: "unknown parameter '${\(p.name)}'"
                                        + didYouMean(p.name, known) + "; known: " + known.map { "${\($0)}" }.joined(separator: ", ")))
                continue
            }
            out.replaceSubrange(p.range, with: value)
        }
        guard errors.isEmpty else {
            throw SpecErrors(errors.sorted { ($0.location ?? SpecLocation(line: 0, column: 0)) < ($1.location ?? SpecLocation(line: 0, column: 0)) })
        }
        return (out, resolved.filter { $0.key == "date" || declared[$0.key] != nil })
    }

    /// For checking a spec without a run (`bis spec check`, `bis submit`,
    /// `bis pipeline add`): `${date}` is today in the schedule's zone and
    /// parameters without a default take a stand-in of their type. The text
    /// as it is when it has no `${`.
    public static func expandForCheck(_ text: String, file: String, now: Date = Date()) throws(SpecErrors) -> String {
        guard text.contains("${") else { return text }
        var header = try SpecHeader.read(yaml: text, file: file)
        for i in header.params.indices where header.params[i].defaultValue == nil {
            switch header.params[i].type {
            case .string: header.params[i].defaultValue = "x"
            case .int: header.params[i].defaultValue = "0"
            case .date: header.params[i].defaultValue = SlotText.localDate(now, in: header.timezone)
            case .bool: header.params[i].defaultValue = "false"
            }
        }
        return try expand(text, file: file, header: header, date: SlotText.localDate(now, in: header.timezone)).text
    }
}
