package org.mnv1tk.core;

import java.util.ArrayDeque;
import java.util.Arrays;

/** Inference latency and frame rate over the last {@code window} frames. */
public final class LatencyStats {
    private final int window;
    private final ArrayDeque<Double> inferenceMs = new ArrayDeque<>();
    private final ArrayDeque<Long> frameNanos = new ArrayDeque<>();

    public LatencyStats(int window) {
        if (window < 2) {
            throw new IllegalArgumentException("window must be at least 2 frames");
        }
        this.window = window;
    }

    /** Records one frame: when it finished ({@code System.nanoTime()}) and how long inference took. */
    public synchronized void add(long frameEndNanos, double inferenceMillis) {
        inferenceMs.addLast(inferenceMillis);
        frameNanos.addLast(frameEndNanos);
        if (inferenceMs.size() > window) {
            inferenceMs.removeFirst();
            frameNanos.removeFirst();
        }
    }

    public synchronized int count() {
        return inferenceMs.size();
    }

    public synchronized double meanMs() {
        double sum = 0;
        for (double v : inferenceMs) {
            sum += v;
        }
        return inferenceMs.isEmpty() ? Double.NaN : sum / inferenceMs.size();
    }

    public synchronized double medianMs() {
        if (inferenceMs.isEmpty()) {
            return Double.NaN;
        }
        double[] sorted = inferenceMs.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /** Frames per second over the window: (frames - 1) / time between the first and last frame. */
    public synchronized double fps() {
        if (frameNanos.size() < 2) {
            return Double.NaN;
        }
        long span = frameNanos.peekLast() - frameNanos.peekFirst();
        return span <= 0 ? Double.NaN : (frameNanos.size() - 1) * 1e9 / span;
    }

    public synchronized void clear() {
        inferenceMs.clear();
        frameNanos.clear();
    }
}
