"""A griffe extension: an attribute's ``#:`` comment lines are its docstring, as in Sphinx.

fw's base classes document their attributes so (``#: Trainable arrays by name; ...``, above
``params``), which griffe alone does not read; without this the API page would show the
Layer contract's attributes bare or not at all.
"""

import griffe


class SphinxComments(griffe.Extension):
    def on_attribute_instance(self, *, node, attr, agent, **kwargs):
        if attr.docstring is not None or attr.lineno is None or attr.filepath is None:
            return
        try:
            lines = attr.lines_collection[attr.filepath]
        except KeyError:
            return
        comment, at = [], attr.lineno - 2  # the line above the attribute, 0-based
        while at >= 0 and lines[at].lstrip().startswith("#:"):
            comment.insert(0, lines[at].lstrip()[2:].strip())
            at -= 1
        if comment:
            attr.docstring = griffe.Docstring(
                "\n".join(comment),
                lineno=at + 2,
                endlineno=attr.lineno - 1,
                parent=attr,
                parser=agent.docstring_parser,
                parser_options=agent.docstring_options,
            )
