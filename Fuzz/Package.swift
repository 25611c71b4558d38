// swift-tools-version:6.0
// libFuzzer targets over the library code that reads untrusted input: the
// pipeline spec (YAML), the expression language, the CSV ingest and the
// Parquet reader. A separate package so that the root package's build and
// tests do not change; built and run by ops/fuzz (see README.md here), which
// passes `--sanitize fuzzer --sanitize address` and its own scratch path.
import PackageDescription

// Each target defines `LLVMFuzzerTestOneInput` (no `main`: libFuzzer's).
let noMain: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "bis-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "bis-fleet", path: ".."),
    ],
    targets: [
        .target(name: "FuzzSupport", path: "Sources/FuzzSupport"),
        .executableTarget(name: "fuzz-spec", dependencies: [.product(name: "FleetCore", package: "bis-fleet"),
                                                            .product(name: "Stages", package: "bis-fleet")],
                          path: "Sources/FuzzSpec", swiftSettings: noMain),
        .executableTarget(name: "fuzz-expr", dependencies: [.product(name: "FleetCore", package: "bis-fleet"),
                                                            .product(name: "Columnar", package: "bis-fleet")],
                          path: "Sources/FuzzExpr", swiftSettings: noMain),
        .executableTarget(name: "fuzz-csv", dependencies: ["FuzzSupport", .product(name: "Stages", package: "bis-fleet"),
                                                           .product(name: "Columnar", package: "bis-fleet")],
                          path: "Sources/FuzzCSV", swiftSettings: noMain),
        .executableTarget(name: "fuzz-parquet", dependencies: ["FuzzSupport", .product(name: "Columnar", package: "bis-fleet")],
                          path: "Sources/FuzzParquet", swiftSettings: noMain),
    ]
)
