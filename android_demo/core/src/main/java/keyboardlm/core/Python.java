package keyboardlm.core;

/**
 * What the Python side writes, written the same way here: {@code repr} of a string (in one-line
 * messages) and {@code json.dumps(..., ensure_ascii=False)}'s strings (the user-word file,
 * byte for byte).
 */
final class Python {
    private Python() {}

    /** Python's repr(str): single quotes unless the text holds ' and no ", escapes as Python. */
    static String repr(String text) {
        char quote = text.indexOf('\'') >= 0 && text.indexOf('"') < 0 ? '"' : '\'';
        StringBuilder out = new StringBuilder().append(quote);
        for (int cp : CodePoints.of(text)) {
            if (cp == quote || cp == '\\') out.append('\\').appendCodePoint(cp);
            else if (cp == '\t') out.append("\\t");
            else if (cp == '\n') out.append("\\n");
            else if (cp == '\r') out.append("\\r");
            else if (printable(cp)) out.appendCodePoint(cp);
            else if (cp < 0x100) out.append(String.format("\\x%02x", cp));
            else if (cp < 0x10000) out.append(String.format("\\u%04x", cp));
            else out.append(String.format("\\U%08x", cp));
        }
        return out.append(quote).toString();
    }

    /** str.isprintable for one code point (the JVM's Unicode data). */
    private static boolean printable(int cp) {
        if (cp == ' ') return true;
        switch (Character.getType(cp)) {
            case Character.CONTROL:
            case Character.FORMAT:
            case Character.SURROGATE:
            case Character.PRIVATE_USE:
            case Character.UNASSIGNED:
            case Character.LINE_SEPARATOR:
            case Character.PARAGRAPH_SEPARATOR:
            case Character.SPACE_SEPARATOR:
                return false;
            default:
                return true;
        }
    }

    /**
     * A manifest value in a one-line message as the Python loader shows it (bundle.py's _show):
     * json.dumps(value, ensure_ascii=False), cut to 57 characters and "..." past 60.
     */
    static String show(Object value) {
        StringBuilder out = new StringBuilder();
        dumps(out, value);
        String text = out.toString();
        return text.length() <= 60 ? text : text.substring(0, 57) + "...";
    }

    /** json.dumps(value, ensure_ascii=False) of an org.json value (", " and ": " between items, keys in the object's order). */
    static void dumps(StringBuilder out, Object value) {
        if (value instanceof String) {
            jsonString(out, (String) value);
        } else if (value instanceof org.json.JSONObject) {
            org.json.JSONObject object = (org.json.JSONObject) value;
            out.append('{');
            boolean first = true;
            for (java.util.Iterator<String> keys = object.keys(); keys.hasNext(); first = false) {
                String key = keys.next();
                if (!first) out.append(", ");
                jsonString(out, key);
                out.append(": ");
                dumps(out, object.opt(key));
            }
            out.append('}');
        } else if (value instanceof org.json.JSONArray) {
            org.json.JSONArray array = (org.json.JSONArray) value;
            out.append('[');
            for (int i = 0; i < array.length(); i++) {
                if (i > 0) out.append(", ");
                dumps(out, array.opt(i));
            }
            out.append(']');
        } else if (value == null || value == org.json.JSONObject.NULL) {
            out.append("null");
        } else {
            out.append(value);
        }
    }

    /** A JSON string as json.dumps(ensure_ascii=False) writes it. */
    static void jsonString(StringBuilder out, String text) {
        out.append('"');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                case '\b': out.append("\\b"); break;
                case '\f': out.append("\\f"); break;
                default:
                    if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
                    else out.append(c);
            }
        }
        out.append('"');
    }
}
