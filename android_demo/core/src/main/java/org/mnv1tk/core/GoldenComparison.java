package org.mnv1tk.core;

import java.util.Arrays;

/** How close a phone's logits are to the host's for the same golden input. */
public final class GoldenComparison {
    /** Minimum SQNR for float32 models on the CPU, where only summation order differs. */
    public static final double FP32_CPU_MIN_SQNR_DB = 50.0;
    /** Minimum SQNR elsewhere: fp16 GPU arithmetic, int8 kernels of another vendor, NPU requantization. */
    public static final double OTHER_MIN_SQNR_DB = 20.0;

    public final double maxAbsDiff;
    public final double sqnrDb;
    public final boolean top1Match;
    public final boolean top5Match;

    private GoldenComparison(double maxAbsDiff, double sqnrDb, boolean top1Match, boolean top5Match) {
        this.maxAbsDiff = maxAbsDiff;
        this.sqnrDb = sqnrDb;
        this.top1Match = top1Match;
        this.top5Match = top5Match;
    }

    public static GoldenComparison compare(float[] host, float[] device) {
        if (host.length != device.length) {
            throw new IllegalArgumentException("host has " + host.length + " logits, device " + device.length);
        }
        double maxAbs = 0;
        double signal = 0;
        double noise = 0;
        for (int i = 0; i < host.length; i++) {
            double d = (double) device[i] - host[i];
            maxAbs = Math.max(maxAbs, Math.abs(d));
            signal += (double) host[i] * host[i];
            noise += d * d;
        }
        double sqnr = noise == 0 ? Double.POSITIVE_INFINITY : 10 * Math.log10(signal / noise);
        int[] hostTop = TopK.indices(host, 5);
        int[] deviceTop = TopK.indices(device, 5);
        return new GoldenComparison(maxAbs, sqnr, hostTop[0] == deviceTop[0], Arrays.equals(hostTop, deviceTop));
    }

    public static double minSqnrDb(String precision, String accelerator) {
        return "fp32".equals(precision) && "cpu".equals(accelerator) ? FP32_CPU_MIN_SQNR_DB : OTHER_MIN_SQNR_DB;
    }

    /** Agreement: the same top-1 class and the SQNR the precision and accelerator allow. */
    public boolean agrees(String precision, String accelerator) {
        return top1Match && sqnrDb >= minSqnrDb(precision, accelerator);
    }
}
