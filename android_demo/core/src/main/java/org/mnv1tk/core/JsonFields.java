package org.mnv1tk.core;

import java.util.List;
import java.util.Map;

/** Typed reads from a parsed JSON object, with errors that name the missing or wrong key. */
final class JsonFields {
    private final Map<String, Object> map;
    private final String where;

    JsonFields(Map<String, Object> map, String where) {
        this.map = map;
        this.where = where;
    }

    boolean has(String key) {
        return map.get(key) != null;
    }

    Object raw(String key) {
        if (!map.containsKey(key)) {
            throw new IllegalArgumentException(where + " has no '" + key + "'");
        }
        return map.get(key);
    }

    String string(String key) {
        return (String) typed(key, String.class);
    }

    String stringOr(String key, String fallback) {
        return has(key) ? string(key) : fallback;
    }

    double number(String key) {
        return ((Double) typed(key, Double.class));
    }

    int integer(String key) {
        return (int) number(key);
    }

    List<?> list(String key) {
        return (List<?>) typed(key, List.class);
    }

    float[] floats(String key) {
        List<?> values = list(key);
        float[] out = new float[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ((Double) values.get(i)).floatValue();
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    JsonFields object(String key) {
        return new JsonFields((Map<String, Object>) typed(key, Map.class), where + "." + key);
    }

    private Object typed(String key, Class<?> type) {
        Object value = raw(key);
        if (!type.isInstance(value)) {
            throw new IllegalArgumentException(where + ": '" + key + "' is not a " + type.getSimpleName());
        }
        return value;
    }
}
