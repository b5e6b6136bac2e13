"""What the LaTeX tests share: whether a LaTeX text is balanced."""

from __future__ import annotations

import re


def balanced(tex: str) -> bool:
    """Braces balanced (escaped ones aside) and every \\begin{x} closed by its \\end{x}, in order."""
    depth, stack = 0, []
    for c in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth < 0:
            return False
    for kind, env in re.findall(r"\\(begin|end)\{([^}]+)\}", tex):
        if kind == "begin":
            stack.append(env)
        elif not stack or stack.pop() != env:
            return False
    return depth == 0 and not stack
