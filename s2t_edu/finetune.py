"""``python -m s2t_edu.finetune``: the fine-tuning command line (``s2t_edu.training.finetune``)."""

import sys

from s2t_edu.training.finetune import main

if __name__ == "__main__":
    sys.exit(main())
