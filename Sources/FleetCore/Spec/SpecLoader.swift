import Columnar
import Yams

/// Walks the YAML tree once: decodes each part into its typed value, checks
/// it, and tracks the columns through normalize. Problems go to `sink`;
/// decoding goes on past them where it can, so one load reports many.
struct SpecLoader {
    let text: SourceText
    let checker: (any ExpressionChecker)?
    var sink: ErrorSink
    /// Source columns declared with a type that was refused.
    var untypedColumns: [String] = []

    init(yaml: String, file: String, checker: (any ExpressionChecker)?) {
        self.text = SourceText(yaml)
        self.checker = checker
        self.sink = ErrorSink(file: file)
    }

    static let topLevelKeys = ["pipeline", "sources", "normalize", "consolidate", "validate", "publish", "report", "deliver",
                               "schedule", "params", "wait_for",
                               "notify", "timeouts", "deadline"]
    static let sourceKeys = ["format", "files", "columns", "header", "delimiter", "quote", "nulls",
                             "missing_columns", "extra_columns", "shard_size"]
    static let csvOnlyKeys: Set<String> = ["header", "delimiter", "quote", "nulls"]
    static let consolidateKeys = ["partition_by", "partitions", "sort_by", "dedupe", "memory_budget"]
    static let dedupeKeys = ["key", "keep", "by"]

    mutating func load(_ root: Node, directory: String, allowedRoots: [String]) -> PipelineSpec? {
        guard let entries = mapping(root, "the spec") else { return nil }
        checkKeys(entries, allowed: Self.topLevelKeys, in: "the spec")
        let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })

        var name = ""
        if let entry = byKey["pipeline"] {
            if let value = string(entry.value, "'pipeline'") {
                if isDatasetName(value) {
                    name = value
                } else {
                    sink.add(entry.value.location,
                             "pipeline name '\(value)' may use only lower-case letters, digits, '_' and '-'")
                }
            }
        } else {
            reportMissing("pipeline", in: entries, allowed: Self.topLevelKeys, at: root.location,
                          "the spec needs 'pipeline: NAME' (lower-case letters, digits, '_' and '-')")
        }

        var sources: [SourceSpec] = []
        if let entry = byKey["sources"] {
            sources = loadSources(entry.value)
        } else {
            reportMissing("sources", in: entries, allowed: Self.topLevelKeys, at: root.location,
                          "the spec needs 'sources' with at least one source")
        }
        let inputColumns = unionOfSourceColumns(sources)

        // Columns whose type was refused stay known by name, and with no
        // columns at all (sources missing or broken) names cannot be
        // checked: either way, one mistake is reported once, not again at
        // every step that uses the column.
        var tracker = SchemaTracker(inputColumns)
        for name in untypedColumns where tracker.index(of: name) == nil {
            tracker.derive(name, type: nil)
        }
        tracker.acceptsAnyName = inputColumns.isEmpty && untypedColumns.isEmpty
        var steps: [NormalizeStep] = []
        if let entry = byKey["normalize"], !entry.value.isEmptyPlainScalar {
            steps = loadNormalize(entry.value, tracker: &tracker)
        }
        let consolidate = byKey["consolidate"].flatMap { loadConsolidate($0.value, tracker: tracker) }

        var validate = ValidateSpec()
        if let entry = byKey["validate"], !entry.value.isEmptyPlainScalar {
            validate = loadValidate(entry.value, tracker: tracker, consolidate: consolidate)
        }
        let publish = byKey["publish"].flatMap { loadPublish($0.value, tracker: tracker) }
        let report = byKey["report"].map { $0.value.specValue }
        if let report {
            // Without a publish section, main_aggregate names nothing; with a
            // broken one, its errors are already reported.
            let summaries = byKey["publish"] == nil ? PublishSpec(dataset: "", summaries: [], location: report.location) : publish
            do throws(SpecErrors) { _ = try ReportSpec(report, file: sink.file, publish: summaries) } catch {
                for e in error.errors { sink.add(e.location, e.message) }
            }
        }
        let deliver = byKey["deliver"].map { $0.value.specValue }
        if let deliver { _ = DeliverSpec.decode(deliver, into: &sink) }   // typed later by deliverSpec(); checked here

        var roots = [PathResolver.canonical(directory)]
        for root in allowedRoots where !roots.contains(PathResolver.canonical(root)) {
            roots.append(PathResolver.canonical(root))
        }
        var spec = PipelineSpec(
            name: name, file: sink.file, directory: directory, allowedRoots: roots,
            sources: sources, normalize: steps, consolidate: consolidate, validate: validate,
            publish: publish, report: report, deliver: deliver,
            inputColumns: inputColumns, columns: tracker.columns, header: loadHeader(entries))
        // Alerts, timeouts, deadlines (AlertSpec.swift, docs/alerts.md).
        if let entry = byKey["notify"], !entry.value.isEmptyPlainScalar { spec.notify = loadNotify(entry.value) }
        if let entry = byKey["timeouts"], !entry.value.isEmptyPlainScalar { spec.timeouts = loadTimeouts(entry.value) }
        if let entry = byKey["deadline"], !entry.value.isEmptyPlainScalar { spec.deadline = loadDeadline(entry.value) }
        return spec
    }

    // MARK: sources

    mutating func loadSources(_ node: Node) -> [SourceSpec] {
        guard let entries = mapping(node, "'sources'") else { return [] }
        if entries.isEmpty {
            sink.add(node.location, "'sources' needs at least one source")
        }
        return entries.compactMap { loadSource(name: $0.key, keyLocation: $0.keyNode.location, $0.value) }
    }

    mutating func loadSource(name: String, keyLocation: SpecLocation, _ node: Node) -> SourceSpec? {
        let context = "source '\(name)'"
        guard let entries = mapping(node, context) else { return nil }
        checkKeys(entries, allowed: Self.sourceKeys, in: context)
        let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })

        var format = SourceFormat.csv
        if let entry = byKey["format"] {
            if let text = string(entry.value, "'format' in \(context)") {
                if let f = SourceFormat(rawValue: text) {
                    format = f
                } else {
                    sink.add(entry.value.location, "'format' in \(context) must be csv, jsonl or parquet, not '\(text)'")
                }
            }
        } else {
            reportMissing("format", in: entries, allowed: Self.sourceKeys, at: keyLocation,
                          "\(context) needs 'format' (csv, jsonl or parquet)")
        }

        var files: [FilePattern] = []
        if let entry = byKey["files"] {
            files = stringList(entry.value, "'files' in \(context)", allowSingle: true)
                .map { FilePattern($0.value, location: $0.location) }
            if entry.value.sequence?.isEmpty == true {
                sink.add(entry.value.location, "'files' in \(context) needs at least one glob")
            }
        } else {
            reportMissing("files", in: entries, allowed: Self.sourceKeys, at: keyLocation,
                          "\(context) needs 'files' (a glob or a list of globs, relative to the spec's folder)")
        }

        var fields: [Field] = []
        if let entry = byKey["columns"] {
            fields = loadColumns(entry.value, context: context)
        } else {
            reportMissing("columns", in: entries, allowed: Self.sourceKeys, at: keyLocation,
                          "\(context) needs 'columns' (a mapping of column name to type, in file order)")
        }

        var csv: CSVOptions? = format == .csv ? CSVOptions() : nil
        if format != .csv {
            for entry in entries where Self.csvOnlyKeys.contains(entry.key) {
                sink.add(entry.keyNode.location, "'\(entry.key)' applies only to csv sources; \(context) is \(format.rawValue)")
            }
        }
        if csv != nil {
            if let entry = byKey["header"], let value = bool(entry.value, "'header' in \(context)") {
                csv?.header = value
            }
            if let entry = byKey["delimiter"], let byte = singleByte(entry.value, "'delimiter' in \(context)") {
                csv?.delimiter = byte
            }
            if let entry = byKey["quote"], let byte = singleByte(entry.value, "'quote' in \(context)") {
                csv?.quote = byte
            }
            if let options = csv, options.delimiter == options.quote, let entry = byKey["quote"] ?? byKey["delimiter"] {
                sink.add(entry.value.location, "'delimiter' and 'quote' in \(context) must differ")
            }
            if let entry = byKey["nulls"] {
                csv?.nulls = stringList(entry.value, "'nulls' in \(context)", allowSingle: true).map(\.value)
            }
        }

        var missing = MissingColumnsPolicy.error
        if let entry = byKey["missing_columns"] {
            missing = choice(entry.value, "'missing_columns' in \(context)") ?? missing
        }
        var extra = ExtraColumnsPolicy.error
        if let entry = byKey["extra_columns"] {
            extra = choice(entry.value, "'extra_columns' in \(context)") ?? extra
        }
        var shardSize = SourceSpec.defaultShardSize
        if format == .parquet, let entry = byKey["shard_size"] {
            sink.add(entry.keyNode.location, "'shard_size' in \(context) does not apply to parquet sources: "
                + "each row group of a Parquet file is a shard")
        } else if let entry = byKey["shard_size"], let size = byteSize(entry.value, "'shard_size' in \(context)") {
            shardSize = size
        }
        return SourceSpec(name: name, format: format, files: files, schema: Schema(fields), csv: csv,
                          missingColumns: missing, extraColumns: extra, shardSize: shardSize, location: keyLocation)
    }

    /// `columns:` name → type, or name → {type:, nullable:}, in order.
    mutating func loadColumns(_ node: Node, context: String) -> [Field] {
        guard let entries = mapping(node, "'columns' in \(context)") else { return [] }
        if entries.isEmpty {
            sink.add(node.location, "'columns' in \(context) needs at least one column")
        }
        if entries.count > SpecSize.maxColumns {
            sink.add(entries[SpecSize.maxColumns].keyNode.location,
                     "'columns' in \(context) declares \(entries.count) columns, more than the \(SpecSize.maxColumns) a source may have")
            return []
        }
        var fields: [Field] = []
        for entry in entries {
            if entry.key.isEmpty {
                sink.add(entry.keyNode.location, "a column name in \(context) is empty")
                continue
            }
            if Provenance.isReserved(entry.key) {
                sink.add(entry.keyNode.location, Provenance.reservedMessage(entry.key, "\(context) declares column"))
                continue
            }
            var typeNode = entry.value
            var nullable = true
            if let sub = entry.value.mapping {
                let subEntries = mappingEntries(sub)
                checkKeys(subEntries, allowed: ["type", "nullable"], in: "column '\(entry.key)'")
                guard let t = subEntries.first(where: { $0.key == "type" }) else {
                    sink.add(entry.value.location, "column '\(entry.key)' in \(context) needs 'type'")
                    continue
                }
                typeNode = t.value
                if let n = subEntries.first(where: { $0.key == "nullable" }),
                   let value = bool(n.value, "'nullable' of column '\(entry.key)'") {
                    nullable = value
                }
            }
            guard let type = columnType(typeNode, "column '\(entry.key)' in \(context)") else {
                untypedColumns.append(entry.key)
                continue
            }
            fields.append(Field(entry.key, type, nullable: nullable))
        }
        return fields
    }

    /// The columns normalize starts from: the first source's, when every
    /// source declares the same names with the same types.
    mutating func unionOfSourceColumns(_ sources: [SourceSpec]) -> [SpecColumn] {
        guard let first = sources.first else { return [] }
        let columns = first.schema.fields.map { SpecColumn(name: $0.name, type: $0.type, nullable: $0.nullable) }
        let expected = Dictionary(first.schema.fields.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
        for other in sources.dropFirst() {
            let names = Dictionary(other.schema.fields.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
            // A column whose type was refused is already reported; not again here.
            let missing = first.schema.fields.map(\.name).filter { names[$0] == nil && !untypedColumns.contains($0) }
            let extra = other.schema.fields.map(\.name).filter { expected[$0] == nil && !untypedColumns.contains($0) }
            let retyped = other.schema.fields.filter { expected[$0.name] != nil && expected[$0.name] != $0.type }
            var problems: [String] = []
            if !missing.isEmpty { problems.append("it lacks \(quotedList(missing))") }
            if !extra.isEmpty { problems.append("it adds \(quotedList(extra))") }
            for field in retyped {
                problems.append("its '\(field.name)' is \(field.type), not \(expected[field.name]!)")
            }
            if !problems.isEmpty {
                sink.add(other.location, "all sources must declare the same columns with the same types, "
                         + "because normalize reads them as one table; source '\(other.name)' differs from '\(first.name)': "
                         + problems.joined(separator: "; "))
            }
        }
        // Nullable if any source allows nulls.
        return columns.map { column in
            var column = column
            column.nullable = sources.contains { s in s.schema.fields.first { $0.name == column.name }?.nullable ?? true }
            return column
        }
    }

    // MARK: normalize

    mutating func loadNormalize(_ node: Node, tracker: inout SchemaTracker) -> [NormalizeStep] {
        guard let items = sequence(node, "'normalize'") else { return [] }
        var steps: [NormalizeStep] = []
        var operations = 0
        for item in items {
            guard let entries = mapping(item, "a normalize step") else { continue }
            // derive, cast, fill_null and rename: one operation per column.
            operations += max(1, entries.first?.value.mapping?.count ?? 1)
            if operations > SpecSize.maxNormalizeOperations {
                sink.add(item.location, "normalize has more than \(SpecSize.maxNormalizeOperations) operations "
                         + "(each derived, cast, filled or renamed column counts as one); split the pipeline")
                break
            }
            guard let entry = entries.first else {
                sink.add(item.location, "a normalize step is empty; use one of \(NormalizeOperation.keys.joined(separator: ", "))")
                continue
            }
            if entries.count > 1 {
                sink.add(entries[1].keyNode.location,
                         "a normalize step has one key, but this one also has '\(entries[1].key)' after '\(entry.key)'; "
                         + "write each as its own '- ' step")
            }
            guard NormalizeOperation.keys.contains(entry.key) else {
                sink.add(entry.keyNode.location, "unknown normalize step '\(entry.key)'"
                         + didYouMean(entry.key, NormalizeOperation.keys)
                         + (suggestion(for: entry.key, among: NormalizeOperation.keys) == nil
                            ? "; steps are \(NormalizeOperation.keys.joined(separator: ", "))" : ""))
                continue
            }
            if let operation = loadStep(entry, tracker: &tracker) {
                steps.append(NormalizeStep(operation, location: item.location))
            }
        }
        return steps
    }

    /// One normalize step, by its key; each updates the tracked columns.
    mutating func loadStep(_ entry: Entry, tracker: inout SchemaTracker) -> NormalizeOperation? {
        let value = entry.value
        switch entry.key {
        case "rename": return loadRename(value, tracker: &tracker)
        case "select": return loadSelect(value, tracker: &tracker)
        case "drop": return loadDrop(value, tracker: &tracker)
        case "cast": return loadCast(value, tracker: &tracker)
        case "trim", "upper", "lower": return loadTextStep(entry.key, value, tracker: tracker)
        case "fill_null": return loadFillNull(value, tracker: &tracker)
        case "derive": return loadDerive(value, tracker: &tracker)
        case "filter": return loadFilter(value, tracker: tracker)
        default: return nil
        }
    }

    mutating func loadRename(_ value: Node, tracker: inout SchemaTracker) -> NormalizeOperation? {
        guard let pairs = mapping(value, "'rename'") else { return nil }
        var renames: [ColumnRename] = []
        for pair in pairs {
            guard let to = string(pair.value, "the new name of '\(pair.key)'") else { continue }
            guard requireColumn(pair.key, at: pair.keyNode.location, in: "rename", tracker) != nil else { continue }
            if to == pair.key { continue }
            if tracker.index(of: to) != nil {
                sink.add(pair.value.location, "cannot rename '\(pair.key)' to '\(to)': a column named '\(to)' already exists; drop it first")
                continue
            }
            if to.isEmpty {
                sink.add(pair.value.location, "cannot rename '\(pair.key)' to an empty name")
                continue
            }
            if Provenance.isReserved(to) {
                sink.add(pair.value.location, Provenance.reservedMessage(to, "cannot rename '\(pair.key)' to"))
                continue
            }
            tracker.rename(pair.key, to: to, at: pair.keyNode.location)
            renames.append(ColumnRename(from: pair.key, to: to))
        }
        return .rename(renames)
    }

    mutating func loadSelect(_ value: Node, tracker: inout SchemaTracker) -> NormalizeOperation {
        let names = stringList(value, "'select'", allowSingle: false)
        var kept: [SpecColumn] = []
        for name in names {
            guard let column = requireColumn(name.value, at: name.location, in: "select", tracker) else { continue }
            if kept.contains(where: { $0.name == name.value }) {
                sink.add(name.location, "'\(name.value)' appears twice in select")
                continue
            }
            kept.append(column)
        }
        tracker.select(kept, at: value.location)
        return .select(names.map(\.value))
    }

    mutating func loadDrop(_ value: Node, tracker: inout SchemaTracker) -> NormalizeOperation {
        let names = stringList(value, "'drop'", allowSingle: false)
        for name in names where requireColumn(name.value, at: name.location, in: "drop", tracker) != nil {
            tracker.remove(name.value, at: name.location, by: "drop")
        }
        return .drop(names.map(\.value))
    }

    mutating func loadCast(_ value: Node, tracker: inout SchemaTracker) -> NormalizeOperation? {
        guard let pairs = mapping(value, "'cast'") else { return nil }
        var casts: [ColumnCast] = []
        for pair in pairs {
            let type = columnType(pair.value, "cast of '\(pair.key)'")
            guard requireColumn(pair.key, at: pair.keyNode.location, in: "cast", tracker) != nil, let type else { continue }
            tracker.setType(pair.key, type)
            casts.append(ColumnCast(column: pair.key, type: type))
        }
        return .cast(casts)
    }

    /// `trim`, `upper` and `lower`: string columns only.
    mutating func loadTextStep(_ step: String, _ value: Node, tracker: SchemaTracker) -> NormalizeOperation {
        let names = stringList(value, "'\(step)'", allowSingle: false)
        for name in names {
            guard let column = requireColumn(name.value, at: name.location, in: step, tracker) else { continue }
            if let type = column.type, type != .string {
                sink.add(name.location, "\(step) needs a string column, but '\(name.value)' is \(type); "
                         + "cast it to string in an earlier step if that is what you mean")
            }
        }
        let columns = names.map(\.value)
        return step == "trim" ? .trim(columns) : step == "upper" ? .upper(columns) : .lower(columns)
    }

    mutating func loadFillNull(_ value: Node, tracker: inout SchemaTracker) -> NormalizeOperation? {
        guard let pairs = mapping(value, "'fill_null'") else { return nil }
        var fills: [FillNull] = []
        for pair in pairs {
            guard let literal = string(pair.value, "the fill_null value of '\(pair.key)'"),
                  let column = requireColumn(pair.key, at: pair.keyNode.location, in: "fill_null", tracker) else { continue }
            var scalar: Scalar?
            if let type = column.type {
                scalar = SpecLiteral.scalar(literal, as: type)
                if scalar == nil {
                    sink.add(pair.value.location, "fill_null value '\(literal)' is not a valid \(type) for column '\(pair.key)'"
                             + literalHint(type))
                    continue
                }
            }
            tracker.setNullable(pair.key, false)
            fills.append(FillNull(column: pair.key, text: literal, value: scalar))
        }
        return .fillNull(fills)
    }

    mutating func loadDerive(_ value: Node, tracker: inout SchemaTracker) -> NormalizeOperation? {
        guard let pairs = mapping(value, "'derive'") else { return nil }
        var derived: [DerivedColumn] = []
        for pair in pairs {
            guard let column = loadDerived(pair, tracker: tracker) else { continue }
            tracker.derive(column.name, type: column.type)
            derived.append(column)
        }
        return .derive(derived)
    }

    mutating func loadFilter(_ value: Node, tracker: SchemaTracker) -> NormalizeOperation? {
        guard let node = expressionNode(value, "'filter'") else { return nil }
        let expression = SpecExpression(node.scalar!.string, location: node.location)
        if let type = checkExpression(node, what: "filter", tracker: tracker), type != .bool {
            sink.add(node.location, "filter needs a bool expression, but this one is \(type)")
        }
        return .filter(expression)
    }

    mutating func loadDerived(_ pair: Entry, tracker: SchemaTracker) -> DerivedColumn? {
        let name = pair.key
        guard !name.isEmpty else {
            sink.add(pair.keyNode.location, "a derived column's name is empty")
            return nil
        }
        guard !Provenance.isReserved(name) else {
            sink.add(pair.keyNode.location, Provenance.reservedMessage(name, "derive"))
            return nil
        }
        var exprNode = pair.value
        var declared: ColumnType?
        if let sub = pair.value.mapping {
            let entries = mappingEntries(sub)
            checkKeys(entries, allowed: ["expr", "type"], in: "derive '\(name)'")
            guard let e = entries.first(where: { $0.key == "expr" }) else {
                sink.add(pair.value.location, "derive '\(name)' needs 'expr'")
                return nil
            }
            exprNode = e.value
            if let t = entries.first(where: { $0.key == "type" }) {
                guard let type = columnType(t.value, "derive '\(name)'") else { return nil }
                declared = type
            }
        }
        guard let node = expressionNode(exprNode, "derive '\(name)'") else { return nil }
        let checked = checkExpression(node, what: "derive '\(name)'", tracker: tracker)
        return DerivedColumn(name: name, expression: SpecExpression(node.scalar!.string, location: node.location),
                             declaredType: declared, type: declared ?? checked)
    }

    /// A scalar holding an expression, or an error.
    mutating func expressionNode(_ node: Node, _ what: String) -> Node? {
        guard case .scalar(let scalar) = node else {
            sink.add(node.location, "\(what) must be an expression in a string, not \(node.kindName)")
            return nil
        }
        if scalar.string.trimmingSpaces().isEmpty {
            sink.add(node.location, "\(what) has an empty expression")
            return nil
        }
        return node
    }

    /// Runs the expression checker, if any, over the columns so far.
    mutating func checkExpression(_ node: Node, what: String, tracker: SchemaTracker) -> ColumnType? {
        guard let checker, let schema = tracker.schema else { return nil }
        let source = node.scalar!.string
        do {
            return try checker.check(source, schema: schema)
        } catch let diagnostic as any ExpressionDiagnostic {
            let location = text.location(inScalar: node, utf8Offset: diagnostic.utf8Offset)
            sink.add(location, "in \(what): \(diagnostic.message)")
        } catch {
            sink.add(node.location, "in \(what): \(error)")
        }
        return nil
    }

    // MARK: consolidate

    mutating func loadConsolidate(_ node: Node, tracker: SchemaTracker) -> ConsolidateSpec? {
        guard let entries = mapping(node, "'consolidate'") else { return nil }
        checkKeys(entries, allowed: Self.consolidateKeys, in: "consolidate")
        let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        var ok = true

        var partitionBy: [Located<String>] = []
        if let entry = byKey["partition_by"] {
            partitionBy = columnList(entry.value, "partition_by", tracker: tracker, allowSingle: true)
            if entry.value.sequence?.isEmpty == true {
                sink.add(entry.value.location, "'partition_by' needs at least one column")
            }
        } else {
            reportMissing("partition_by", in: entries, allowed: Self.consolidateKeys, at: node.location,
                          "consolidate needs 'partition_by' (the columns rows are hash-partitioned on)")
            ok = false
        }

        var partitions = 0
        if let entry = byKey["partitions"] {
            if let n = int(entry.value, "'partitions'", range: ConsolidateSpec.partitionRange) { partitions = n } else { ok = false }
        } else {
            reportMissing("partitions", in: entries, allowed: Self.consolidateKeys, at: node.location,
                          "consolidate needs 'partitions' (1 to 4096)")
            ok = false
        }

        var sortBy: [String] = []
        if let entry = byKey["sort_by"] {
            sortBy = columnList(entry.value, "sort_by", tracker: tracker, allowSingle: true).map(\.value)
        }

        var dedupe: DedupeSpec?
        if let entry = byKey["dedupe"] {
            dedupe = loadDedupe(entry.value, partitionBy: partitionBy.map(\.value), tracker: tracker)
        }

        var budget = ConsolidateSpec.defaultMemoryBudget
        if let entry = byKey["memory_budget"], let size = byteSize(entry.value, "'memory_budget'") {
            budget = size
        }
        guard ok else { return nil }
        return ConsolidateSpec(partitionBy: partitionBy.map(\.value), partitions: partitions, sortBy: sortBy,
                               dedupe: dedupe, memoryBudget: budget, location: node.location)
    }

    mutating func loadDedupe(_ node: Node, partitionBy: [String], tracker: SchemaTracker) -> DedupeSpec? {
        guard let entries = mapping(node, "'dedupe'") else { return nil }
        checkKeys(entries, allowed: Self.dedupeKeys, in: "dedupe")
        let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        var key: [String] = []
        if let entry = byKey["key"] {
            key = columnList(entry.value, "the dedupe key", tracker: tracker, allowSingle: true).map(\.value)
            let missing = partitionBy.filter { !key.contains($0) }
            if !key.isEmpty, !missing.isEmpty {
                sink.add(entry.value.location, "duplicates must meet in one partition, so the dedupe key must include "
                         + "the partition key \(missing.joined(separator: ", ")); add it to 'key'")
            }
        } else {
            reportMissing("key", in: entries, allowed: Self.dedupeKeys, at: node.location,
                          "dedupe needs 'key' (the columns that identify a record)")
        }
        var keep: DedupeKeep = .first
        let byColumn = byKey["by"].flatMap { columnList($0.value, "dedupe 'by'", tracker: tracker, allowSingle: true).first }
        if let by = byKey["by"], by.value.sequence != nil {
            sink.add(by.value.location, "dedupe 'by' is one column, not a list")
        }
        switch byKey["keep"].flatMap({ string($0.value, "'keep' in dedupe") }) {
        case nil, "first":
            if let by = byKey["by"] {
                sink.add(by.keyNode.location, "dedupe 'by' is used only with 'keep: latest'")
            }
        case "latest":
            if let byColumn {
                keep = .latest(by: byColumn.value)
            } else if byKey["by"] == nil {
                sink.add(byKey["keep"]!.value.location, "'keep: latest' needs 'by', the column whose greatest value wins")
            }
        case let other?:
            sink.add(byKey["keep"]!.value.location, "'keep' in dedupe must be first or latest, not '\(other)'")
        }
        return DedupeSpec(key: key, keep: keep)
    }

    // MARK: publish (validate is in ValidateLoader.swift)

    mutating func loadPublish(_ node: Node, tracker: SchemaTracker) -> PublishSpec? {
        guard let entries = mapping(node, "'publish'") else { return nil }
        checkKeys(entries, allowed: ["dataset", "summaries", "provenance", "keep", "schema_change"], in: "publish")
        let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        guard let datasetEntry = byKey["dataset"] else {
            reportMissing("dataset", in: entries, allowed: ["dataset", "summaries", "provenance", "keep", "schema_change"], at: node.location,
                          "publish needs 'dataset' (the name of the published dataset)")
            return nil
        }
        guard let dataset = string(datasetEntry.value, "'dataset' in publish") else { return nil }
        if !isDatasetName(dataset) {
            sink.add(datasetEntry.value.location, "dataset name '\(dataset)' may use only lower-case letters, digits, '_' and '-'")
        }
        var summaries: [SummarySpec] = []
        if let entry = byKey["summaries"], let items = mapping(entry.value, "'summaries'") {
            for item in items {
                if !isDatasetName(item.key) {
                    sink.add(item.keyNode.location, "summary name '\(item.key)' may use only lower-case letters, digits, '_' and '-'")
                }
                if let summary = loadSummary(item, tracker: tracker) { summaries.append(summary) }
            }
        }
        var provenance = false
        if let entry = byKey["provenance"], let value = bool(entry.value, "'provenance' in publish") {
            provenance = value
        }
        var keep = PublishSpec.defaultKeep
        if let entry = byKey["keep"], let n = int(entry.value, "'keep' in publish", range: PublishSpec.keepRange) {
            keep = n
        }
        var spec = PublishSpec(dataset: dataset, summaries: summaries, provenance: provenance, keep: keep, location: node.location)
        if let entry = byKey["schema_change"], let text = string(entry.value, "'schema_change' in publish") {
            if let value = PublishSpec.SchemaChange(rawValue: text) {
                spec.schemaChange = value
            } else {
                sink.add(entry.value.location, "'schema_change' in publish must be none, additive or any, not '\(text)' "
                         + "(additive: only new nullable columns after the existing ones; any: every change)")
            }
        }
        return spec
    }

    mutating func loadSummary(_ item: Entry, tracker: SchemaTracker) -> SummarySpec? {
        let context = "summary '\(item.key)'"
        guard let entries = mapping(item.value, context) else { return nil }
        checkKeys(entries, allowed: ["group_by", "aggregates"], in: context)
        let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        var groupBy: [String] = []
        if let entry = byKey["group_by"] {
            groupBy = columnList(entry.value, "group_by", tracker: tracker, allowSingle: true).map(\.value)
        }
        var aggregates: [AggregateSpec] = []
        if let entry = byKey["aggregates"], let pairs = mapping(entry.value, "'aggregates' in \(context)") {
            for pair in pairs {
                if groupBy.contains(pair.key) || aggregates.contains(where: { $0.name == pair.key }) {
                    sink.add(pair.keyNode.location, "\(context) already has a column named '\(pair.key)'")
                    continue
                }
                if let aggregate = loadAggregate(pair, tracker: tracker) { aggregates.append(aggregate) }
            }
        } else if byKey["aggregates"] == nil {
            reportMissing("aggregates", in: entries, allowed: ["group_by", "aggregates"], at: item.value.location,
                          "\(context) needs 'aggregates' (name: fn(column))")
        }
        return SummarySpec(name: item.key, groupBy: groupBy, aggregates: aggregates)
    }

    mutating func loadAggregate(_ pair: Entry, tracker: SchemaTracker) -> AggregateSpec? {
        guard let text = string(pair.value, "aggregate '\(pair.key)'") else { return nil }
        let functions = AggregateFunction.allCases.map(\.rawValue)
        let shape = "write it as fn(column) with fn one of \(functions.joined(separator: ", ")), or count()"
        let trimmed = text.trimmingSpaces()
        guard let open = trimmed.firstIndex(of: "("), trimmed.hasSuffix(")") else {
            sink.add(pair.value.location, "aggregate '\(pair.key)' is '\(text)'; \(shape)")
            return nil
        }
        let fnName = trimmed[..<open].trimmingSpaces()
        let argument = trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)].trimmingSpaces()
        guard let function = AggregateFunction(rawValue: fnName) else {
            sink.add(pair.value.location, "unknown aggregate function '\(fnName)'" + didYouMean(fnName, functions)
                     + (suggestion(for: fnName, among: functions) == nil ? "; \(shape)" : ""))
            return nil
        }
        if argument.isEmpty {
            guard function == .count else {
                sink.add(pair.value.location, "\(fnName)() needs a column, as in \(fnName)(amount)")
                return nil
            }
            return AggregateSpec(name: pair.key, function: .count, column: nil)
        }
        guard let column = requireColumn(argument, at: pair.value.location, in: "aggregate '\(pair.key)'", tracker) else {
            return nil
        }
        if function == .sum || function == .avg, let type = column.type, !type.isNumeric {
            sink.add(pair.value.location, "\(fnName) needs a numeric column, but '\(argument)' is \(type)")
            return nil
        }
        return AggregateSpec(name: pair.key, function: function, column: argument)
    }
}
