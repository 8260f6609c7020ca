// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "swift-mcp-session-storage",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "MCPSessionStorage", targets: ["MCPSessionStorage"]),
        .library(name: "MCPSessionStorageSQLite", targets: ["MCPSessionStorageSQLite"]),
        .library(name: "MCPSessionStoragePostgres", targets: ["MCPSessionStoragePostgres"]),
        .library(name: "MCPSessionStorageTesting", targets: ["MCPSessionStorageTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
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
        .target(
            name: "MCPSessionStorageTesting",
            dependencies: ["MCPSessionStorage"]
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
            dependencies: ["MCPSessionStoragePostgres", "MCPSessionStorageTesting"]
        ),
        .executableTarget(
            name: "TieredClusterNode",
            dependencies: ["MCPSessionStoragePostgres"],
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
