"""The order of the gallery: the book's figures first, then comparisons, then real use."""

READING_ORDER = [
    "plot_rmsprop_book.py",
    "plot_adagrad_book.py",
    "plot_rmsprop_weights.py",
    "plot_airfoil_adagrad.py",
    "plot_airfoil_rmsprop.py",
    "plot_rmsprop_vs_adagrad.py",
    "plot_gamma_sweep.py",
    "plot_diabetes_regression.py",
    "plot_groups_schedule.py",
    "plot_njit_training_loop.py",
    "plot_torch_rmsprop.py",
    "plot_glove_identifiers.py",
]


class ReadingOrder:
    """sphinx-gallery ``within_subsection_order``: scripts listed above first, in that order,
    any other script after them by file name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = str(filename)
        if name in READING_ORDER:
            return (READING_ORDER.index(name), name)
        return (len(READING_ORDER), name)

    def __repr__(self):
        return "ReadingOrder"
