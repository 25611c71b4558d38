import Testing
@testable import FleetCore

/// Every kind of spec mistake, with the exact message a user sees.
@Suite struct SpecErrorTests {
    @Test func unknownKeyNearAKnownOneSuggestsIt() {
        let yaml = baseSpec + "consolidate:\n  partiton_by: [id]\n  partitions: 4\n"
        // No second "consolidate needs 'partition_by'": the suggestion says it.
        #expect(specErrors(yaml) == [
            "spec.yml:12:3: unknown key 'partiton_by' in consolidate; did you mean 'partition_by'?",
        ])
    }

    @Test func unknownKeyFarFromAnyListsTheKnownOnes() {
        let yaml = baseSpec + "    colour: blue\n"
        #expect(specErrors(yaml) == [
            "spec.yml:11:5: unknown key 'colour' in source 'orders'; expected one of format, files, columns, header, "
                + "delimiter, quote, nulls, missing_columns, extra_columns, shard_size",
        ])
    }

    @Test func severalErrorsAreReportedTogetherInFileOrder() {
        let yaml = "pipeline: Orders!\nsorces: {}\n"
        #expect(specErrors(yaml) == [
            "spec.yml:1:11: pipeline name 'Orders!' may use only lower-case letters, digits, '_' and '-'",
            "spec.yml:2:1: unknown key 'sorces' in the spec; did you mean 'sources'?",
        ])
        let many = baseSpec + "    header: maybe\n    delimiter: ';;'\n    missing_columns: skip\n"
        #expect(specErrors(many) == [
            "spec.yml:11:13: 'header' in source 'orders' must be true or false, not 'maybe'",
            "spec.yml:12:16: 'delimiter' in source 'orders' must be a single one-byte character "
                + "(quote it, as in \"\\t\" or \";\"), not ';;'",
            "spec.yml:13:22: 'missing_columns' in source 'orders' must be error or null, not 'skip'",
        ])
    }

    @Test func errorsDescribeAsOneLineEach() {
        do {
            _ = try parseSpec("pipeline: Orders!\nsorces: {}\n")
            Issue.record("expected errors")
        } catch {
            #expect(error.description == """
                spec.yml:1:11: pipeline name 'Orders!' may use only lower-case letters, digits, '_' and '-'
                spec.yml:2:1: unknown key 'sorces' in the spec; did you mean 'sources'?
                """)
        }
    }

    @Test func missingRequiredKeys() {
        #expect(specErrors("sources: {}\n") == [
            "spec.yml:1:1: the spec needs 'pipeline: NAME' (lower-case letters, digits, '_' and '-')",
            "spec.yml:1:10: 'sources' needs at least one source",
        ])
        #expect(specErrors("pipeline: x\nsources:\n  a:\n    files: []\n    columns: {}\n") == [
            "spec.yml:3:3: source 'a' needs 'format' (csv, jsonl or parquet)",
            "spec.yml:4:12: 'files' in source 'a' needs at least one glob",
            "spec.yml:5:14: 'columns' in source 'a' needs at least one column",
        ])
        #expect(specErrors("") == ["spec.yml: the spec is empty; it needs at least 'pipeline' and 'sources'"])
    }

    @Test func wrongShapes() {
        #expect(specErrors("pipeline: x\nsources: [a]\n") == ["spec.yml:2:10: 'sources' must be a mapping, not a list"])
        #expect(specErrors(baseSpec + "normalize:\n  - upper: name\n") == [
            "spec.yml:12:12: 'upper' must be a list, not a single value",
        ])
        #expect(specErrors(baseSpec + "validate:\n  - not_null: [id]\n    unique: [id]\n") == [
            "spec.yml:12:5: a validate rule is a mapping with one key, such as 'not_null: [col]'",
        ])
    }

    @Test func yamlSyntaxErrorsKeepTheirPosition() {
        #expect(specErrors("pipeline: x\n  bad: : :\n") == [
            "spec.yml:2:6: not valid YAML: mapping values are not allowed in this context",
        ])
        #expect(specErrors("pipeline: x\npipeline: y\n") == [
            "spec.yml:1:1: duplicate key 'pipeline' in one mapping; each key may appear once",
        ])
    }

    // MARK: sources

    @Test func columnTypes() {
        func withAmount(_ type: String) -> [String] {
            specErrors(baseSpec.replacingOccurrences(of: "amount: decimal(12,2)", with: "amount: \(type)"))
        }
        #expect(withAmount("decimal(19,2)") == [
            "spec.yml:9:15: column 'amount' in source 'orders': decimal precision must be 1 to 18, not 19",
        ])
        #expect(withAmount("decimal(3,4)") == [
            "spec.yml:9:15: column 'amount' in source 'orders': decimal scale must be 0 to the precision 3, not 4",
        ])
        #expect(withAmount("decimal") == [
            "spec.yml:9:15: column 'amount' in source 'orders': decimal needs a precision and scale, as in decimal(15,2)",
        ])
        #expect(withAmount("dat") == [
            "spec.yml:9:15: column 'amount' in source 'orders': unknown column type 'dat'; did you mean 'date'?",
        ])
        #expect(withAmount("{type: date, nullable: nope}") == [
            "spec.yml:9:38: 'nullable' of column 'amount' must be true or false, not 'nope'",
        ])
        #expect(withAmount("{nullable: false}") == ["spec.yml:9:15: column 'amount' in source 'orders' needs 'type'"])
    }

    @Test func aRefusedColumnTypeIsReportedOnceNotAtEveryUse() {
        let yaml = baseSpec.replacingOccurrences(of: "amount: decimal(12,2)", with: "amount: money") + """
        normalize:
          - trim: [amount]
          - derive: {x: "amount * 2"}
        consolidate: {partition_by: [amount], partitions: 2}

        """
        #expect(specErrors(yaml, checker: FakeChecker()) == [
            "spec.yml:9:15: column 'amount' in source 'orders': unknown column type 'money'; "
                + "expected one of int64, int32, double, bool, string, date, timestamp or decimal(p,s)",
        ])
        #expect(specErrors("pipeline: x\nnormalize:\n  - drop: [a]\n") == [
            "spec.yml:1:1: the spec needs 'sources' with at least one source",
        ])
    }

    @Test func formatAndCSVOnlyOptions() {
        #expect(specErrors(baseSpec.replacingOccurrences(of: "format: csv", with: "format: xlsx")) == [
            "spec.yml:4:13: 'format' in source 'orders' must be csv, jsonl or parquet, not 'xlsx'",
        ])
        #expect(specErrors(baseSpec.replacingOccurrences(of: "format: csv", with: "format: parquet\n    delimiter: \";\"")) == [
            "spec.yml:5:5: 'delimiter' applies only to csv sources; source 'orders' is parquet",
        ])
        #expect(specErrors(baseSpec.replacingOccurrences(of: "format: csv", with: "format: parquet\n    shard_size: 1MiB")) == [
            "spec.yml:5:5: 'shard_size' in source 'orders' does not apply to parquet sources: each row group of a Parquet file is a shard",
        ])
        #expect(specErrors(baseSpec.replacingOccurrences(of: "format: csv", with: "format: jsonl\n    delimiter: \";\"")) == [
            "spec.yml:5:5: 'delimiter' applies only to csv sources; source 'orders' is jsonl",
        ])
        #expect(specErrors(baseSpec + "    delimiter: '\"'\n") == [
            "spec.yml:11:16: 'delimiter' and 'quote' in source 'orders' must differ",
        ])
        #expect(specErrors(baseSpec + "    shard_size: 64 parsecs\n") == [
            "spec.yml:11:17: 'shard_size' in source 'orders' must be a positive size such as 64MiB or 1GB, not '64 parsecs'",
        ])
    }

    @Test func severalSourcesMustAgreeOnColumns() {
        let yaml = """
        pipeline: x
        sources:
          a:
            format: csv
            files: a.csv
            columns: {id: int64, v: string}
          b:
            format: csv
            files: b.csv
            columns: {id: int32, w: string}

        """
        #expect(specErrors(yaml) == [
            "spec.yml:7:3: all sources must declare the same columns with the same types, because normalize reads "
                + "them as one table; source 'b' differs from 'a': it lacks 'v'; it adds 'w'; its 'id' is int32, not int64",
        ])
    }

    // MARK: normalize

    @Test func normalizeStepsTrackTheSchema() {
        let yaml = baseSpec + """
        normalize:
          - drop: [nme]
          - trim: [amount]
          - rename: {id: name}
          - cast: {amount: money}
          - fill_null: {day: yesterday}

        """
        #expect(specErrors(yaml) == [
            "spec.yml:12:12: unknown column 'nme' in drop; did you mean 'name'?",
            "spec.yml:13:12: trim needs a string column, but 'amount' is decimal(12,2); "
                + "cast it to string in an earlier step if that is what you mean",
            "spec.yml:14:18: cannot rename 'id' to 'name': a column named 'name' already exists; drop it first",
            "spec.yml:15:20: cast of 'amount': unknown column type 'money'; "
                + "expected one of int64, int32, double, bool, string, date, timestamp or decimal(p,s)",
            "spec.yml:16:22: fill_null value 'yesterday' is not a valid date for column 'day' (write dates as YYYY-MM-DD)",
        ])
    }

    @Test func aColumnRemovedEarlierIsUnknownLater() {
        let yaml = baseSpec + """
        normalize:
          - rename: {name: customer}
          - upper: [name]
          - select: [id, amount]
          - lower: [customer]

        """
        #expect(specErrors(yaml) == [
            "spec.yml:13:13: unknown column 'name' in upper; rename at 12:14 removed it",
            "spec.yml:15:13: unknown column 'customer' in lower; select at 14:13 removed it",
        ])
    }

    @Test func stepShapeMistakes() {
        let yaml = baseSpec + """
        normalize:
          - drop: [id]
            trim: [name]
          - trimm: [name]
          - select: [name, name]

        """
        #expect(specErrors(yaml) == [
            "spec.yml:13:5: a normalize step has one key, but this one also has 'trim' after 'drop'; "
                + "write each as its own '- ' step",
            "spec.yml:14:5: unknown normalize step 'trimm'; did you mean 'trim'?",
            "spec.yml:15:20: 'name' appears twice in select",
        ])
    }

    @Test func fillNullLiteralsMustFitTheColumnType() {
        let yaml = baseSpec + "normalize:\n  - fill_null: {amount: 1.234, id: x1}\n"
        #expect(specErrors(yaml) == [
            "spec.yml:12:25: fill_null value '1.234' is not a valid decimal(12,2) for column 'amount' "
                + "(at most 12 digits, 2 after the point)",
            "spec.yml:12:36: fill_null value 'x1' is not a valid int64 for column 'id'",
        ])
    }

    @Test func droppingThePartitionKeyIsReportedWhereItIsDropped() {
        let yaml = baseSpec + "normalize:\n  - drop: [id]\nconsolidate:\n  partition_by: [id]\n  partitions: 4\n"
        #expect(specErrors(yaml) == [
            "spec.yml:12:12: drop removes 'id', the consolidate partition key (partition_by at 14:18); "
                + "keep it, or partition by another column",
        ])
    }

    // MARK: expressions

    @Test func expressionErrorsPointIntoTheYAMLString() {
        let yaml = baseSpec + """
        normalize:
          - derive: {total: "amount * qty"}

        """
        #expect(specErrors(yaml, checker: FakeChecker()) == ["spec.yml:12:31: in derive 'total': unknown column 'qty'"])
    }

    @Test func expressionPositionsInEveryStringStyle() {
        let yaml = baseSpec + """
        normalize:
          - filter: "id + 1"
          - filter: 'name = ''a'' and nam = 1'
          - filter: nme > 1
          - filter: "name = \\"é\\" and nm = 1"
          - filter: |
              id > 1 and
              amont > 0
          - derive: {x: {expr: "id", type: strin}}

        """
        #expect(specErrors(yaml, checker: FakeChecker()) == [
            "spec.yml:12:13: filter needs a bool expression, but this one is int64",
            "spec.yml:13:31: in filter: unknown column 'nam'",
            "spec.yml:14:13: in filter: unknown column 'nme'",
            "spec.yml:15:31: in filter: unknown column 'nm'",
            "spec.yml:18:7: in filter: unknown column 'amont'",
            "spec.yml:19:36: derive 'x': unknown column type 'strin'; did you mean 'string'?",
        ])
    }

    @Test func otherCheckerErrorsAreReportedAtTheStringStart() {
        struct Refusal: Error, CustomStringConvertible {
            var description: String { "expressions are switched off" }
        }
        let checker = ClosureExpressionChecker { _, _ in throw Refusal() }
        let yaml = baseSpec + "normalize:\n  - filter: \"id > 1\"\n"
        #expect(specErrors(yaml, checker: checker) == ["spec.yml:12:13: in filter: expressions are switched off"])
    }

    // MARK: consolidate

    @Test func consolidateChecks() {
        let yaml = baseSpec + """
        consolidate:
          partition_by: [id]
          partitions: 5000
          dedupe: {key: [name], keep: latest}

        """
        #expect(specErrors(yaml) == [
            "spec.yml:13:15: 'partitions' must be a whole number from 1 to 4096, not '5000'",
            "spec.yml:14:17: duplicates must meet in one partition, so the dedupe key must include the partition key id; "
                + "add it to 'key'",
            "spec.yml:14:31: 'keep: latest' needs 'by', the column whose greatest value wins",
        ])
        let more = baseSpec + """
        consolidate:
          partition_by: id
          partitions: 4
          sort_by: [day, dya]
          dedupe: {key: [id], keep: first, by: day}
          memory_budget: lots

        """
        #expect(specErrors(more) == [
            "spec.yml:14:18: unknown column 'dya' in sort_by; did you mean 'day'?",
            "spec.yml:15:36: dedupe 'by' is used only with 'keep: latest'",
            "spec.yml:16:18: 'memory_budget' must be a positive size such as 64MiB or 1GB, not 'lots'",
        ])
        #expect(specErrors(baseSpec + "consolidate:\n  partition_by: [id]\n  partitions: 0\n") == [
            "spec.yml:13:15: 'partitions' must be a whole number from 1 to 4096, not '0'",
        ])
        #expect(specErrors(baseSpec + "consolidate:\n  partition_by: [id]\n  partitions: 2\n  dedupe: {key: [id], keep: last}\n") == [
            "spec.yml:14:29: 'keep' in dedupe must be first or latest, not 'last'",
        ])
    }

    // MARK: publish

    @Test func publishSummaries() {
        let yaml = baseSpec + """
        publish:
          dataset: Orders
          summaries:
            by_day:
              group_by: [dy]
              aggregates:
                total: sum(name)
                n: cnt(id)
                m: max()
                z: amount

        """
        #expect(specErrors(yaml) == [
            "spec.yml:12:12: dataset name 'Orders' may use only lower-case letters, digits, '_' and '-'",
            "spec.yml:15:18: unknown column 'dy' in group_by; did you mean 'day'?",
            "spec.yml:17:16: sum needs a numeric column, but 'name' is string",
            "spec.yml:18:12: unknown aggregate function 'cnt'; did you mean 'count'?",
            "spec.yml:19:12: max() needs a column, as in max(amount)",
            "spec.yml:20:12: aggregate 'z' is 'amount'; write it as fn(column) with fn one of "
                + "sum, count, count_distinct, min, max, avg, or count()",
        ])
    }
}
