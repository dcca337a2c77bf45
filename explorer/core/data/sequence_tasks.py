"""The recurrent networks' sequence tasks by name: what a command line or a settings box lists, without torch
(``python -m explorer --help`` stays quick). The tasks themselves are generated in ``sequences``."""

TASKS = ("adding", "recall", "sine", "sawtooth", "text")
TASK_HELP = {
    "adding": "adding problem: sum the two marked values of a T-step sequence (answer at the last step)",
    "recall": "delayed recall: reproduce the symbol shown first, after a lag of distractors",
    "sine": "forecast the next value of a sine wave (random period and phase), at every step",
    "sawtooth": "forecast the next value of a sawtooth wave (random period and phase), at every step",
    "text": "character-level language model: predict the next character, at every step",
}
