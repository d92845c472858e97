import LMMCommandLine
LMMCommand.main()
