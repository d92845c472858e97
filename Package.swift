// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "lmm",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "MixedModels", targets: ["MixedModels"]),
        .executable(name: "lmm", targets: ["lmm"]),
        .executable(name: "datagen", targets: ["datagen"]),
        .executable(name: "lmm-bench", targets: ["lmm-bench"]),
        .executable(name: "lmm-mpi", targets: ["lmm-mpi"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // MARK: - System libraries (Debian packages)
        .systemLibrary(
            name: "CCHOLMOD",
            providers: [.apt(["libsuitesparse-dev"])]
        ),
        .systemLibrary(
            name: "CNLopt",
            providers: [.apt(["libnlopt-dev"])]
        ),
        .systemLibrary(
            name: "CLAPACK",
            providers: [.apt(["libopenblas-dev", "liblapack-dev"])]
        ),
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]
        ),

        // MARK: - Core library
        .target(
            name: "MixedModels",
            dependencies: ["CCHOLMOD", "CNLopt", "CLAPACK"],
            // The numerical kernels are optimized in debug builds too: unoptimized, the
            // matrix-free method's SIMD row pass (generic over the block width) and the dense
            // loops made the test suite 3–4× slower (MPI and iterative suites above 5 minutes).
            swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]
        ),

        // MARK: - Command-line tools
        .target(
            name: "LMMCommandLine",
            dependencies: [
                "MixedModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "lmm", dependencies: ["LMMCommandLine"]),

        // MARK: - MPI (only lmm-mpi links it: a plain lmm runs where MPI is not installed)
        .target(name: "MixedModelsMPI", dependencies: ["MixedModels", "CMPI"]),
        .executableTarget(name: "lmm-mpi", dependencies: ["LMMCommandLine", "MixedModelsMPI"]),
        .executableTarget(
            name: "datagen",
            dependencies: [
                "MixedModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "datagen"
        ),

        // MARK: - Benchmarks (kept apart so the library carries no benchmark code)
        .executableTarget(
            name: "lmm-bench",
            dependencies: [
                "MixedModels",
                "MixedModelsMPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/lmm-bench"
        ),

        // MARK: - Tests
        .testTarget(
            name: "MixedModelsTests",
            dependencies: ["MixedModels", "LMMCommandLine", "lmm", "lmm-mpi"],
            exclude: ["R"],
            resources: [.copy("Fixtures")]
        ),
    ]
)
