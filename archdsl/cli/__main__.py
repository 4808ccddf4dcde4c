"""`python -m archdsl.cli`: the same as `archdsl`."""
from archdsl.cli import main_exit

main_exit()
