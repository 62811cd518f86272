from wheelstrap.entry import run

run()
