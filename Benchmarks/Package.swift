// swift-tools-version:6.2
// The benchmarks live in their own package so that users of the library never fetch
// package-benchmark and its dependencies.
import PackageDescription

let package = Package(
    name: "swift-mcp-session-storage-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-mcp-session-storage", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "SessionStorageBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "MCPSessionStorage", package: "swift-mcp-session-storage"),
                .product(name: "MCPSessionStorageSQLite", package: "swift-mcp-session-storage"),
                .product(name: "MCPSessionStoragePostgres", package: "swift-mcp-session-storage"),
                .product(name: "MCPSessionStorageRedis", package: "swift-mcp-session-storage"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/SessionStorageBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "FrontMemory",
            dependencies: [.product(name: "MCPSessionStorage", package: "swift-mcp-session-storage")],
            path: "Tools/FrontMemory"
        ),
        .executableTarget(
            name: "PostgresNIOFloor",
            dependencies: [
                .product(name: "MCPSessionStorageRedis", package: "swift-mcp-session-storage"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tools/PostgresNIOFloor"
        ),
        .executableTarget(
            name: "RedisCommands",
            dependencies: [
                .product(name: "MCPSessionStorage", package: "swift-mcp-session-storage"),
                .product(name: "MCPSessionStorageRedis", package: "swift-mcp-session-storage"),
            ],
            path: "Tools/RedisCommands"
        ),
        .executableTarget(
            name: "RedisFloor",
            dependencies: [
                .product(name: "MCPSessionStorageRedis", package: "swift-mcp-session-storage"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tools/RedisFloor"
        ),
        .executableTarget(
            name: "DynamoDBLoad",
            dependencies: [
                .product(name: "MCPSessionStorage", package: "swift-mcp-session-storage"),
                .product(name: "MCPSessionStorageDynamoDB", package: "swift-mcp-session-storage"),
            ],
            path: "Tools/DynamoDBLoad"
        ),
        .executableTarget(
            name: "HTTPFloor",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "Tools/HTTPFloor"
        ),
    ],
    swiftLanguageModes: [.v6]
)
