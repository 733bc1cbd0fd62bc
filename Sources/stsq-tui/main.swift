print("stsq-tui")
