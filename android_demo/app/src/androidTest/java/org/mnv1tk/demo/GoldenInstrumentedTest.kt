package org.mnv1tk.demo

import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.mnv1tk.core.SelfCheck

/** On the phone: every portable bundled model of this flavor, on the CPU, agrees with the host's golden logits. */
@RunWith(AndroidJUnit4::class)
class GoldenInstrumentedTest {
    @Test
    fun everyBundledModelAgreesWithTheHost() {
        val context = InstrumentationRegistry.getInstrumentation().targetContext
        val bundle = AssetBundle(context.assets)
        assertTrue("no ${BuildConfig.RUNTIME} models in assets/models.json", bundle.models.isNotEmpty())
        val golden = bundle.golden()
        for (entry in bundle.models.filter { it.soc == null }) {
            RuntimeFactory.open(context, bundle, entry, "cpu", 1).use { classifier ->
                val result = SelfCheck.run(bundle, golden, entry, classifier)
                val worst = result.rows.mapNotNull { it.logits?.sqnrDb }.minOrNull()
                assertTrue("${entry.file}: self-check failed (worst SQNR $worst dB)", result.passed)
            }
        }
    }
}
