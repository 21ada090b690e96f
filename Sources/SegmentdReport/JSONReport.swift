import Foundation

/// The report as JSON for automation (docs/report.md): snake_case keys, stable key order.
public enum JSONReport {
    public static func render(_ report: SegmentReport) throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(report)
        data.append(10)
        return data
    }

    public static func decode(_ data: Data) throws -> SegmentReport {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(SegmentReport.self, from: data)
    }
}
