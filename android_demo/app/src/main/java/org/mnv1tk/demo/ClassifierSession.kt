package org.mnv1tk.demo

import android.content.Context
import org.mnv1tk.core.Classifier
import org.mnv1tk.core.LatencyStats
import org.mnv1tk.core.ModelEntry
import org.mnv1tk.core.ModelInput
import org.mnv1tk.core.Preprocessor
import org.mnv1tk.core.RgbaFrame
import org.mnv1tk.core.TopK

/** One model on one accelerator: camera frame in, top-3 and timing out. Used from the analysis thread only. */
class ClassifierSession(
    context: Context,
    bundle: AssetBundle,
    val requested: ModelEntry,
    accelerator: String,
    threads: Int,
) : AutoCloseable {
    /** The file actually loaded: for the NPU, a sibling compiled for this phone's SoC when the bundle has one. */
    val entry: ModelEntry = bundle.index.resolve(requested, accelerator, DeviceSoc.name)
    private val classifier: Classifier = RuntimeFactory.open(context, bundle, entry, accelerator, threads)
    private val preprocessor = Preprocessor(entry.input)
    private val labels = bundle.labels(entry)
    val stats = LatencyStats(30)

    val acceleratorUsed: String get() = classifier.acceleratorUsed()
    val fallbackNotice: String? get() = classifier.fallbackNotice()

    /** Classifies one upright frame; the timing covers the runtime call only (preprocessing excluded). */
    fun classify(frame: RgbaFrame): List<TopK.Label> {
        val tensor = preprocessor.toFloatTensor(frame.pixels, frame.width, frame.height)
        val input = ModelInput.forSpec(entry.input, tensor)
        val start = System.nanoTime()
        val logits = classifier.run(input)
        val end = System.nanoTime()
        stats.add(end, (end - start) / 1e6)
        return TopK.labels(logits, labels, 3)
    }

    override fun close() = classifier.close()
}
