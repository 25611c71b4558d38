import Columnar

/// Vectorized row selection over column buffers: `gather` picks rows by
/// index (in the order given), `filter` keeps rows under a mask. Each runs
/// one typed loop per column; no value is boxed.
enum Gather {
    static func column(_ column: Column, _ rows: [Int]) -> Column {
        let validity: [Bool]? = column.validity.map { v in rows.map { v[$0] } }
        let values: ColumnValues
        switch column.values {
        case .int64(let v): values = .int64(rows.map { v[$0] })
        case .int32(let v): values = .int32(rows.map { v[$0] })
        case .double(let v): values = .double(rows.map { v[$0] })
        case .bool(let v): values = .bool(rows.map { v[$0] })
        case .bytes(let s):
            var total = 0
            for r in rows { total += s.length(at: r) }
            var offsets = [Int]()
            offsets.reserveCapacity(rows.count + 1)
            offsets.append(0)
            var bytes = [UInt8]()
            bytes.reserveCapacity(total)
            s.bytes.withUnsafeBufferPointer { src in
                for r in rows {
                    let a = s.offsets[r], b = s.offsets[r + 1]
                    if b > a { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: src[a..<b])) }
                    offsets.append(bytes.count)
                }
            }
            // Safe: offsets start at 0, ascend and end at bytes.count by construction.
            values = .bytes(try! StringColumn(offsets: offsets, bytes: bytes))
        }
        // Safe: same type and storage as the source, mask as long as the values.
        return try! Column(column.type, values, validity: validity)
    }

    static func batch(_ batch: ColumnBatch, _ rows: [Int]) -> ColumnBatch {
        if rows.count == batch.rowCount, rows.elementsEqual(0..<batch.rowCount) { return batch }
        // Safe: gathered columns keep the schema's types, lengths agree and no null is added.
        return try! ColumnBatch(schema: batch.schema, columns: batch.columns.map { column($0, rows) })
    }

    /// Rows where `mask` is true, in order.
    static func batch(_ batch: ColumnBatch, mask: [Bool]) -> ColumnBatch {
        var rows = [Int]()
        rows.reserveCapacity(mask.count)
        for (i, keep) in mask.enumerated() where keep { rows.append(i) }
        return Gather.batch(batch, rows)
    }
}
