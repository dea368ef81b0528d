"""What only the book's chapters need, apart from the algorithms.

Chapter 1's Unicode helpers, the token display of chapters 1 to 3, the book's tokenizers and corpora
(chapters 2, 3 and 7 to 11), peak memory over worker processes (chapter 2), loss-curve plotting,
experiments over seeds and their log (chapters 7 to 11), probes inside trained models (chapters 9 and
10), `show_source` (every chapter) and the notebook set-up every chapter runs first (seeds, threads,
pinned kernels).
"""
