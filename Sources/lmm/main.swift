import LMMCommandLine

Allocator.configure()
LMMCommand.main()
