import Columnar
import Foundation
import Testing
@testable import Stages

/// Messages for CSV files that break the rules in ways found in public
/// corpora (csv-spectrum and others): each names what is wrong, not a
/// symptom of it.
@Suite struct IngestCSVMessageTests {
    static func failure(_ text: String, _ source: IngestSource) throws -> String {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let path = try dir.write("input.csv", text)
        do {
            _ = try ingest(shard: Shard(path: path), source: source, outputDir: dir.file("o"))
            return "read without error"
        } catch let error as IngestError {
            guard case .invalidSource(let file, let message) = error else { return "\(error)" }
            #expect(file == path)
            return message
        }
    }

    /// CR-only line ends (classic Mac OS) make the whole file one record.
    /// They were reported as a quote error, or as a column named twice.
    @Test(arguments: [
        "id,name\r1,\"x\"\r2,\"y\"\r",    // was: 'x' after the closing quote
        "a,b\rc,b\rc,b\r",                // was: the header names column b\rc twice
        "id,name\r1,a\r2,b\r",            // was: undeclared columns
    ])
    func crOnlyLineEndsAreNamedWithAHeader(text: String) throws {
        let message = try Self.failure(text, csv([Field("id", .int64), Field("name", .string)]))
        #expect(message == "the header (line 1) holds a carriage return that does not end a line: "
            + "CR-only line ends (classic Mac OS) are not supported; convert them to LF or CRLF (e.g. tr '\\r' '\\n')",
            "\(message)")
    }

    @Test func crOnlyLineEndsAreNamedInTheQuarantineWithoutAHeader() throws {
        let r = try ingestText("1,a\r2,b\r3,c\r", csv([Field("id", .int64), Field("name", .string)], header: false))
        #expect(r.batch.rowCount == 0)
        #expect(r.reasons == ["line 1: 4 fields, expected 2 (it holds a CR that does not end a line: "
            + "CR-only line ends (classic Mac OS) are not supported; convert them to LF or CRLF (e.g. tr '\\r' '\\n'))"])
        // A quote error in such a record says the same.
        let q = try ingestText("1,\"a\"\r2,\"b\"\r", csv([Field("id", .int64), Field("name", .string)], header: false))
        #expect(q.reasons.count == 1)
        #expect(q.reasons.first?.contains("after the closing quote") == true)
        #expect(q.reasons.first?.contains("CR-only line ends") == true, "\(q.reasons)")
    }

    /// A lone CR inside an unquoted field stays data, and CRLF is a line end.
    @Test func loneCRInAFieldAndCRLFStillRead() throws {
        let r = try ingestText("id,name\r\n1,a\rb\r\n2,\"c\rd\"\r\n", csv([Field("id", .int64), Field("name", .string)]))
        #expect(r.quarantine == [])
        #expect(r.strings("name") == ["a\rb", "c\rd"])
    }

    /// A trailing comma gave an undeclared column with an empty name that
    /// the message could not show.
    @Test func anEmptyHeaderNameIsNamedByPosition() throws {
        let columns = [Field("a", .int64), Field("b", .int64), Field("c", .int64)]
        #expect(try Self.failure("a,b,c,\n1,2,3,\n", csv(columns))
            == "column 4 of the header is empty (trailing comma?); name it, or skip such columns with extra_columns: ignore")
        #expect(try Self.failure("a,,b,c\n1,,2,3\n", csv(columns))
            == "column 2 of the header is empty; name it, or skip such columns with extra_columns: ignore")
        // With extra columns ignored, empty ones are skipped like any other (and may repeat).
        var lenient = csv(columns)
        lenient.extraColumns = .ignore
        let r = try ingestText("a,,b,c,,\n1,x,2,3,y,z\n", lenient)
        #expect(r.quarantine == [])
        #expect(r.values("c") == [.int(3)])
    }
}
