package org.mnv1tk.demo

import android.os.Bundle
import android.widget.TextView
import androidx.appcompat.app.AppCompatActivity
import androidx.lifecycle.lifecycleScope
import java.util.Locale
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.mnv1tk.core.SelfCheck

/** Runs the bundle's golden inputs through the chosen model and shows the agreement with the host's logits. */
class SelfCheckActivity : AppCompatActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_self_check)
        val report = findViewById<TextView>(R.id.report)
        val modelId = intent.getStringExtra(EXTRA_MODEL) ?: return finish()
        val accelerator = intent.getStringExtra(EXTRA_ACCELERATOR) ?: "cpu"
        val threads = intent.getIntExtra(EXTRA_THREADS, 1)
        lifecycleScope.launch {
            report.text = withContext(Dispatchers.Default) {
                runCatching { selfCheck(modelId, accelerator, threads) }.getOrElse { "self-check failed: ${it.message}" }
            }
        }
    }

    private fun selfCheck(modelId: String, accelerator: String, threads: Int): String {
        val bundle = AssetBundle(assets)
        val picked = bundle.models.first { it.id == modelId }
        val entry = bundle.index.resolve(picked, accelerator, DeviceSoc.name)
        return RuntimeFactory.open(this, bundle, entry, accelerator, threads).use { classifier ->
            val golden = bundle.golden()
            val result = SelfCheck.run(bundle, golden, entry, classifier)
            buildString {
                appendLine("${entry.file} on ${classifier.acceleratorUsed()}")
                golden.forModel(entry.id).reference?.let { appendLine("host logits of $it (the host cannot run this compiled file)") }
                classifier.fallbackNotice()?.let { appendLine("fallback: $it") }
                appendLine(if (result.passed) "AGREES with the host" else "DISAGREES with the host")
                appendLine()
                for (row in result.rows) {
                    append(String.format(Locale.ROOT, "%-14s tensor Δ %.1e", row.image.substringAfterLast('/'), row.tensorMaxDiff))
                    val logits = row.logits
                    if (logits == null) {
                        appendLine("  (no host logits in the bundle)")
                    } else {
                        appendLine(String.format(Locale.ROOT, "  logits max Δ %.4f  SQNR %.1f dB  top-1 %s  top-5 %s",
                            logits.maxAbsDiff, logits.sqnrDb, if (logits.top1Match) "same" else "DIFFERENT",
                            if (logits.top5Match) "same" else "different"))
                    }
                }
            }
        }
    }

    companion object {
        const val EXTRA_MODEL = "model"
        const val EXTRA_ACCELERATOR = "accelerator"
        const val EXTRA_THREADS = "threads"
    }
}
