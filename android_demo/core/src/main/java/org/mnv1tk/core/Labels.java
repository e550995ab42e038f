package org.mnv1tk.core;

import java.util.ArrayList;
import java.util.List;

/** labels.txt: one class name a line, in class order. */
public final class Labels {
    private Labels() {
    }

    public static String[] parse(String text) {
        List<String> names = new ArrayList<>();
        for (String line : text.split("\n", -1)) {
            String name = line.endsWith("\r") ? line.substring(0, line.length() - 1) : line;
            if (!name.isEmpty()) {
                names.add(name);
            }
        }
        return names.toArray(new String[0]);
    }
}
