"""`python -m archdsl ...`: the same as the `archdsl` command."""
from archdsl.cli import main_exit

main_exit()
