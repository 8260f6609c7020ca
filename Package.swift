// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "swift-mcp-session-storage",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "MCPSessionStorage", targets: ["MCPSessionStorage"]),
        .library(name: "MCPSessionStorageSQLite", targets: ["MCPSessionStorageSQLite"]),
        .library(name: "MCPSessionStoragePostgres", targets: ["MCPSessionStoragePostgres"]),
        .library(name: "MCPSessionStorageRedis", targets: ["MCPSessionStorageRedis"]),
        .library(name: "MCPSessionStorageDynamoDB", targets: ["MCPSessionStorageDynamoDB"]),
        .library(name: "MCPSessionStorageTesting", targets: ["MCPSessionStorageTesting"]),
        .library(name: "MCPSessionServer", targets: ["MCPSessionServer"]),
        .executable(name: "mcp-session-server", targets: ["mcp-session-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // Already in the graph through Hummingbird; named for the channel handlers the server adds.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        // The executable's /metrics only: the library reports through swift-metrics to any backend.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "MCPSessionStorage",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "MCPSessionStorageSQLite",
            dependencies: [
                "MCPSessionStorage",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "MCPSessionStoragePostgres",
            dependencies: [
                "MCPSessionStorage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "MCPSessionStorageRedis",
            dependencies: [
                "MCPSessionStorage", "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "MCPSessionStorageDynamoDB",
            dependencies: [
                "MCPSessionStorage",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "MCPSessionStorageTesting",
            dependencies: ["MCPSessionStorage"]
        ),
        .target(
            name: "MCPSessionServer",
            dependencies: [
                "MCPSessionStorage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "mcp-session-server",
            dependencies: [
                "MCPSessionServer", "MCPSessionStorageSQLite", "MCPSessionStoragePostgres", "MCPSessionStorageRedis",
                "MCPSessionStorageDynamoDB",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "MCPSessionServerTests",
            dependencies: [
                "MCPSessionServer", "MCPSessionStorageSQLite",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "MCPSessionStorageTests",
            dependencies: [
                "MCPSessionStorage", "MCPSessionStorageTesting",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "MCPSessionStorageSQLiteTests",
            dependencies: ["MCPSessionStorageSQLite", "MCPSessionStorageTesting"]
        ),
        .testTarget(
            name: "MCPSessionStoragePostgresTests",
            dependencies: ["MCPSessionStoragePostgres", "MCPSessionStorageTesting", "ClusterNodeDriver"]
        ),
        .executableTarget(
            name: "QuickStart",
            dependencies: ["MCPSessionStorage", "MCPSessionStorageSQLite"],
            path: "Examples/QuickStart"
        ),
        .executableTarget(
            name: "GreetServer",
            dependencies: [
                "MCPSessionServer", "MCPSessionStorage", "MCPSessionStorageSQLite",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/GreetServer"
        ),
        .testTarget(
            name: "MCPSessionStorageRedisTests",
            dependencies: [
                "MCPSessionStorageRedis", "MCPSessionStorageTesting", "ClusterNodeDriver",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MCPSessionStorageDynamoDBTests",
            dependencies: [
                "MCPSessionStorageDynamoDB", "MCPSessionStorageTesting", "MCPSessionStorageRedis", "MCPSessionStoragePostgres",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "ClusterNodeDriver",
            dependencies: ["MCPSessionStorage", "MCPSessionStorageTesting"],
            path: "Tests/ClusterNodeDriver"
        ),
        .executableTarget(
            name: "TieredClusterNode",
            dependencies: [
                "MCPSessionStoragePostgres", "MCPSessionStorageRedis",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/TieredClusterNode"
        ),
        .executableTarget(
            name: "SQLiteKillTestWriter",
            dependencies: ["MCPSessionStorageSQLite"],
            path: "Tests/SQLiteKillTestWriter"
        ),
    ],
    swiftLanguageModes: [.v6]
)
