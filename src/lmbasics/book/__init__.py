"""What only the book's chapters need, apart from the algorithms.

Chapter 1's Unicode helpers, the token display of chapters 1 to 3, the book's tokenizers and corpora
(chapters 2, 3 and 7 to 10), loss-curve plotting (chapters 7 to 10) and the notebook set-up every
chapter runs first (seeds, threads, pinned kernels).
"""
