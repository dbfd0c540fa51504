"""What protobuf would make of an ONNX file, estimated from its encoding before protobuf parses it.

protobuf makes a C object of every entry it parses: an empty initialiser, 7
bytes of the file, takes about 180 bytes, so 20 MB of them take 600 MB and a
256 MiB file 7 GB, before fw can look at a single node. This walks the
encoding (tags and lengths only, guided by the message types of ``onnx``'s
own descriptors) and adds up the memory each entry will take, stopping as
soon as the sum passes the budget. Raw tensor bytes are skipped over, not read.
"""

#: Estimated bytes protobuf takes per entry, at most (measured with protobuf 7.36, upb: 180 for an empty tensor).
MESSAGE_BYTES = 256
STRING_BYTES = 64  # and the string's own bytes
#: Field types (descriptor.proto's numbers), and the bytes of memory per byte of the file that a packed
#: repeated field of that type takes at most: a fixed-size value takes as much as in the file, a varint
#: of one byte 8 (int64) or 4 (the other varints).
_MESSAGE, _STRING, _BYTES = 11, 9, 12
_PACKED = {
    1: 1,
    2: 1,
    6: 1,
    7: 1,
    15: 1,
    16: 1,
    3: 8,
    4: 8,
    18: 8,
}  # double, float, fixed*, sfixed*; int64, uint64, sint64


class _Damaged(Exception):
    """The encoding does not hold together: left to protobuf, which says so."""


def _varint(data, pos):
    value = shift = 0
    while shift < 70:
        if pos >= len(data):
            raise _Damaged
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise _Damaged


def parsed_size(data, descriptor, budget, most_entries) -> tuple:
    """``(entries, bytes)``: how many entries protobuf would make to parse ``data`` as a ``descriptor``
    message, and the bytes they would take. The walk stops as soon as either passes its limit (``most_entries``,
    ``budget``); a damaged encoding gives what was counted up to the damage (protobuf then says what is wrong)."""
    entries, total, stack = 0, MESSAGE_BYTES, [(descriptor, 0, len(data))]
    try:
        while stack and entries <= most_entries and total <= budget:
            message, pos, end = stack.pop()
            fields = message.fields_by_number
            while pos < end and entries <= most_entries and total <= budget:
                key, pos = _varint(data, pos)
                wire, field = key & 7, fields.get(key >> 3)
                entries += 1
                if wire == 0:
                    pos = _varint(data, pos)[1]
                    total += 8
                elif wire in (1, 5):
                    pos += 8 if wire == 1 else 4
                    total += 8
                elif wire == 2:
                    n, start = _varint(data, pos)
                    pos = start + n
                    if pos > end:
                        raise _Damaged
                    if field is not None and field.type == _MESSAGE:
                        stack.append((field.message_type, start, pos))
                        total += MESSAGE_BYTES
                    elif field is None or field.type in (_STRING, _BYTES):
                        total += STRING_BYTES + n  # an unknown field is kept as bytes
                    else:
                        total += n * _PACKED.get(field.type, 4)
                else:
                    raise _Damaged  # groups: ONNX has none
    except _Damaged:
        pass
    return entries, total
