package org.mnv1tk.demo

import android.content.res.AssetManager
import org.mnv1tk.core.AssetSource
import org.mnv1tk.core.GoldenSet
import org.mnv1tk.core.Labels
import org.mnv1tk.core.ModelEntry
import org.mnv1tk.core.ModelIndex

/** The bundle `mnv1-tk bundle` wrote into assets/: models.json, models, labels, golden vectors. */
class AssetBundle(private val assets: AssetManager) : AssetSource {
    val index: ModelIndex = ModelIndex.parse(readText(ModelIndex.FILE_NAME))

    /** The models this flavor's runtime can run. */
    val models: List<ModelEntry> = index.forRuntime(BuildConfig.RUNTIME)

    override fun read(path: String): ByteArray = assets.open(path).use { it.readBytes() }

    fun labels(entry: ModelEntry): Array<String> = Labels.parse(readText(entry.labelsFile))

    fun golden(): GoldenSet = GoldenSet.load(this, index.goldenFile)
}
