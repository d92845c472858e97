import ArgumentParser

public struct LMMCommand: ParsableCommand {
    public init() {}
}
