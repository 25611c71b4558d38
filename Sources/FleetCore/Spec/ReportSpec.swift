/// `report:` how the run's report looks.
///
/// ```yaml
/// report:
///   title: Lineitem summary               # default: the pipeline's name
///   main_aggregate: lineitem_by_status.revenue   # summary.column for the bar chart;
///                                          # default: the first summary's first aggregate
/// ```
public struct ReportSpec: Sendable, Hashable {
    public var title: String?
    /// The summary and its aggregate the bar chart shows; nil: the first
    /// summary's first aggregate.
    public var mainAggregate: MainAggregate?
    public var location: SpecLocation?

    public struct MainAggregate: Sendable, Hashable, CustomStringConvertible {
        public var summary: String
        public var column: String

        public init(summary: String, column: String) {
            self.summary = summary
            self.column = column
        }

        /// `summary.column`, as written in the spec.
        public var description: String { "\(summary).\(column)" }
    }

    public init(title: String? = nil, mainAggregate: MainAggregate? = nil, location: SpecLocation? = nil) {
        self.title = title
        self.mainAggregate = mainAggregate
        self.location = location
    }

    static let keys = ["title", "main_aggregate"]

    /// Types a `report:` section as `PipelineSpec.report` keeps it. With
    /// `publish`, checks that `main_aggregate` names one of its summaries and
    /// an aggregate of that summary. `file` names the spec in errors.
    public init(_ value: SpecValue, file: String = "spec.yml", publish: PublishSpec? = nil) throws(SpecErrors) {
        var errors: [SpecError] = []
        func add(_ at: SpecLocation, _ message: String) { errors.append(SpecError(file: file, location: at, message: message)) }
        location = value.location
        title = nil
        mainAggregate = nil
        switch value {
        case .scalar(let text, let quoted, _) where text.isEmpty && !quoted:
            return   // `report:` with nothing after it: the defaults
        case .mapping(let entries, _):
            for entry in entries {
                switch entry.key {
                case "title":
                    guard let t = entry.value.text else { add(entry.value.location, "'title' in report must be text"); continue }
                    title = t
                case "main_aggregate":
                    guard let t = entry.value.text else {
                        add(entry.value.location, "'main_aggregate' in report must be summary.column, e.g. by_country.revenue")
                        continue
                    }
                    let parts = t.split(separator: ".", omittingEmptySubsequences: false)
                    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                        add(entry.value.location, "'main_aggregate: \(t)' must be summary.column, e.g. by_country.revenue")
                        continue
                    }
                    let wanted = MainAggregate(summary: String(parts[0]), column: String(parts[1]))
                    if let publish {
                        let names = publish.summaries.map(\.name)
                        if let summary = publish.summaries.first(where: { $0.name == wanted.summary }) {
                            let aggregates = summary.aggregates.map(\.name)
                            if !aggregates.contains(wanted.column) {
                                add(entry.value.location, "'\(wanted.column)' is not an aggregate of summary '\(wanted.summary)'"
                                    + didYouMean(wanted.column, aggregates) + "; it has \(aggregates.joined(separator: ", "))")
                            }
                        } else if names.isEmpty {
                            add(entry.value.location, "main_aggregate names summary '\(wanted.summary)', but publish has no summaries")
                        } else {
                            add(entry.value.location, "no summary '\(wanted.summary)' in publish" + didYouMean(wanted.summary, names)
                                + "; it has \(names.joined(separator: ", "))")
                        }
                    }
                    mainAggregate = wanted
                default:
                    add(entry.keyLocation, "unknown key '\(entry.key)' in report" + didYouMean(entry.key, Self.keys)
                        + "; report takes \(Self.keys.joined(separator: ", "))")
                }
            }
        default:
            add(value.location, "'report' must be a mapping such as {title: Daily orders}")
        }
        if !errors.isEmpty { throw SpecErrors(errors) }
    }
}

extension PipelineSpec {
    /// The `report:` section typed; the defaults when the spec has none.
    /// `PipelineSpec.load` has already checked it, so this throws only for
    /// a spec built by hand.
    public func reportSpec() throws(SpecErrors) -> ReportSpec {
        guard let report else { return ReportSpec() }
        return try ReportSpec(report, file: file, publish: publish)
    }
}
