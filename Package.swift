// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "bis-fleet",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bis", targets: ["bis"]),
        .executable(name: "bis-worker", targets: ["bis-worker"]),
        .library(name: "AMQP", targets: ["AMQP"]),
        .library(name: "FleetWire", targets: ["FleetWire"]),
        .library(name: "FleetCore", targets: ["FleetCore"]),
        .library(name: "Columnar", targets: ["Columnar"]),
        .library(name: "Stages", targets: ["Stages"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // Already in the graph through hummingbird; named for the CLI's HTTPS client (BIS_CA_FILE).
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // `Service` and `ServiceGroup`: the coordinator's engine loops and HTTP
        // server run in one ServiceGroup, bis-worker's worker in another.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        // /metrics: families on a PrometheusCollectorRegistry; swift-metrics is
        // what Hummingbird's MetricsMiddleware records request metrics through.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The coordinator's alert sender: webhooks, Slack, Alertmanager (docs/alerts.md).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // C libraries from Debian, each in its own small target with a shim for
        // what Swift cannot call directly (variadic functions).
        .target(
            name: "CRabbitMQ",
            path: "Sources/CRabbitMQ",
            linkerSettings: [.linkedLibrary("rabbitmq")]
        ),
        // glibc's <malloc.h>: the worker's heap setting (WorkerRuntime's
        // ProcessResources.boundHeapRetention).
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .systemLibrary(
            name: "CZstd",
            path: "Sources/CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        // Parquet pages from other writers: SNAPPY (Spark's and pyarrow's
        // default) and GZIP. Read only; chunks are written with ZSTD.
        .systemLibrary(
            name: "CSnappy",
            path: "Sources/CSnappy",
            providers: [.apt(["libsnappy-dev"])]
        ),
        // zlib for GZIP pages. Not named CZlib: ZIPFoundation has a module of that name.
        .systemLibrary(
            name: "CGzip",
            path: "Sources/CGzip",
            providers: [.apt(["zlib1g-dev"])]
        ),

        // Swift over rabbitmq-c: the only code that touches it.
        .target(
            name: "AMQP",
            dependencies: [
                "CRabbitMQ",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The fleet's wire vocabulary: task and event messages, heartbeats,
        // chunk references, ids, the version, the `FleetTransport` protocol and
        // its in-memory implementation, retry policy, chunk store layout.
        // Foundation and swift-crypto only: the transport needs neither Columnar nor Yams.
        // Crypto for the messages' HMAC-SHA256 under the fleet key.
        .target(name: "FleetWire", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // The pipeline spec (YAML through Yams) and the expression language,
        // which evaluates over Columnar's column buffers. Re-exports FleetWire.
        .target(
            name: "FleetCore",
            dependencies: [
                "FleetWire", "Columnar",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),

        // Parquet chunks with ZSTD pages: schema, column buffers, writer, reader
        // (which also reads SNAPPY and GZIP pages).
        // Crypto only for SHA-256 of written files (BoringSSL uses the CPU's
        // SHA extensions; a portable Swift SHA-256 took a third of write time).
        .target(
            name: "Columnar",
            dependencies: ["CZstd", "CSnappy", "CGzip", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["README.md"]
        ),

        // The seven stage operators as plain functions over chunks: no queue,
        // no database. The fleet only moves them around.
        .target(
            name: "Stages",
            dependencies: [
                "FleetCore", "Columnar",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),   // the .xlsx container
            ],
            exclude: ["Consolidate/README.md", "Ingest/README.md"]
        ),

        // What the coordinator offers its clients: the `CoordinatorService`
        // protocol, run/task/execution states, run, worker, lineage and
        // quarantine views, OpenLineage events, the metrics snapshot, the API's
        // JSON form. All `bis`'s client commands need: no GRDB, Columnar or Yams.
        .target(name: "CoordinatorAPI", dependencies: ["FleetWire"]),
        // /metrics' families on a swift-prometheus registry owned by one engine
        // (or server): the snapshot's counts set at scrape time, per-pipeline and
        // per-worker series, and the process-wide request metrics Hummingbird
        // records through swift-metrics.
        .target(
            name: "FleetMetrics",
            dependencies: [
                "CoordinatorAPI",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The coordinator's engine: lineage store (SQLite through GRDB),
        // planner, outbox dispatcher, event intake. Transport-agnostic.
        // Implements `CoordinatorService`; re-exports CoordinatorAPI.
        .target(
            name: "Coordination",
            dependencies: [
                "CoordinatorAPI", "FleetCore", "Columnar", "Stages", "FleetMetrics",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),   // the engine's loops are services
                .product(name: "AsyncHTTPClient", package: "async-http-client"),          // the alert sender
                .product(name: "Yams", package: "Yams"),                                  // --alerts FILE
            ]
        ),
        // The coordinator's HTTP API (JSON), the dashboard's HTML and the
        // Prometheus text of /metrics, over Hummingbird, from any
        // `CoordinatorService` (not the engine itself).
        .target(
            name: "CoordinatorHTTP",
            dependencies: [
                "CoordinatorAPI", "FleetWire", "FleetMetrics",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),   // --tls-cert/--tls-key, over swift-nio-ssl
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),          // SHA-256 of presented tokens
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The worker's runtime: executes stage tasks from any transport. No SQLite.
        .target(
            name: "WorkerRuntime",
            dependencies: [
                "FleetCore", "Columnar", "Stages", "CMalloc",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),   // FleetWorker is a Service
            ]
        ),
        // The fleet's transport over RabbitMQ (the AMQP module): wire messages
        // only, no Parquet codec, no YAML.
        .target(
            name: "FleetAMQP",
            dependencies: ["AMQP", "FleetWire", .product(name: "Logging", package: "swift-log")]
        ),

        .executableTarget(
            name: "bis",
            dependencies: [
                "FleetWire", "FleetCore", "Columnar", "Stages", "CoordinatorAPI", "Coordination", "CoordinatorHTTP",
                "WorkerRuntime", "FleetAMQP", "FleetMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // The client's HTTPS with a private CA (BIS_CA_FILE): URLSession on Linux cannot take one.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),   // `bis coordinator` is one ServiceGroup
            ],
            path: "Coordinator"
        ),
        .executableTarget(
            name: "bis-worker",
            dependencies: [
                "FleetCore", "WorkerRuntime", "FleetAMQP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Worker",
            exclude: ["README.md"]
        ),

        // Release-built load generator for ops/bench/amqp.
        .executableTarget(name: "bis-bench-amqp", dependencies: ["AMQP"], path: "Benchmarks/AMQPBench"),
        // Release-built driver for ops/bench/dispatch: the engine over AMQP with bis-worker processes.
        .executableTarget(name: "bis-bench-dispatch", dependencies: ["Coordination", "FleetAMQP", "FleetCore",
                                                                     .product(name: "GRDB", package: "GRDB.swift"),
                                                                     .product(name: "Logging", package: "swift-log")],
                          path: "Benchmarks/DispatchBench"),
        // Release-built driver for ops/bench/ingest.
        .executableTarget(name: "bis-bench-ingest", dependencies: ["Stages", "Columnar"], path: "Benchmarks/IngestBench"),

        // What the test targets share: finding and running the Python cross-check tools.
        .target(name: "TestSupport", path: "Tests/TestSupport"),

        .testTarget(name: "AMQPTests", dependencies: ["AMQP"]),
        .testTarget(name: "FleetCoreTests", dependencies: ["FleetCore", "Columnar", "TestSupport"]),
        .testTarget(name: "StagesTests", dependencies: ["Stages", "FleetCore", "Columnar", "TestSupport"], exclude: ["python"]),
        .testTarget(
            name: "ColumnarTests",
            dependencies: ["Columnar", "TestSupport", "CSnappy", "CGzip",   // the codecs' own compressors write test pages
                           .product(name: "PropertyBased", package: "swift-property-based")],
            exclude: ["python", "parquet-testing"]
        ),
        // The HTTP API over a fake service, and the `bis` client against it.
        // With the real engine and worker too: /metrics through prometheus_client, the
        // dashboard in headless Chromium, the OpenLineage export through openlineage-python.
        .testTarget(
            name: "CoordinatorHTTPTests",
            dependencies: [
                "CoordinatorHTTP", "CoordinatorAPI", "Coordination", "FleetWire", "FleetCore", "Columnar", "WorkerRuntime",
                "TestSupport", "bis", "FleetMetrics",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["python"]
        ),
        // Runs the built `bis` executable as a user would (exit codes, --json).
        // Columnar: to write chunks the CLI must read (two columns of one name).
        .testTarget(name: "CLITests", dependencies: ["bis", "TestSupport", "Columnar"]),
        // Talks to the private RabbitMQ node that ops/broker starts.
        // Runs `bis-worker` too (crashes on purpose through BIS_TEST_FAULT).
        .testTarget(name: "IntegrationTests", dependencies: ["AMQP", "FleetCore", "FleetAMQP", "WorkerRuntime", "bis-worker", "TestSupport"]),
        // The fleet in one process: engine, store and workers over the in-memory transport.
        .testTarget(name: "FleetTests", dependencies: [
            "Coordination", "CoordinatorHTTP", "WorkerRuntime", "FleetCore", "Stages", "Columnar", "TestSupport", "FleetMetrics",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // The real processes (`bis coordinator`, `bis-worker`) against the private broker: kill -9, restarts.
        .testTarget(name: "FleetIntegrationTests", dependencies: ["FleetCore", "TestSupport",
                                                              .product(name: "Crypto", package: "swift-crypto")],
                    exclude: ["python"]),
        // Workers on separate "hosts" (network namespaces, veth pairs, a relay to the broker): a host cut off mid-task.
        .testTarget(name: "NetworkFleetTests", dependencies: ["FleetCore", "FleetAMQP", "TestSupport"], exclude: ["python"]),
    ]
)
