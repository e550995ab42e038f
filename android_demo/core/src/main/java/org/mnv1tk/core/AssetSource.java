package org.mnv1tk.core;

import java.io.IOException;
import java.nio.charset.StandardCharsets;

/** Reads bundle files by their path relative to the bundle root (Android assets, or a folder on the JVM). */
public interface AssetSource {
    byte[] read(String path) throws IOException;

    default String readText(String path) throws IOException {
        return new String(read(path), StandardCharsets.UTF_8);
    }
}
