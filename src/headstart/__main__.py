"""python -m headstart: the command line (what accelerate launch -m and torchrun -m run)."""

from .cli import main

main()
