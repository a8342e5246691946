from pea.cli import main

main()
