"""``python -m asr_kd.cli`` (what ``torchrun -m asr_kd.cli ...`` runs)."""
import sys

from . import main

sys.exit(main())
