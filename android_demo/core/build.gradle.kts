// Plain JVM module: no Android imports, so it compiles and is tested anywhere (also by tests/android with javac).
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_1_8
    targetCompatibility = JavaVersion.VERSION_1_8
}

dependencies {
    testImplementation(libs.junit)
}

tasks.test {
    // The golden vectors `mnv1-tk bundle` writes into the app's assets.
    systemProperty("mnv1tk.bundle", rootProject.file("app/src/main/assets").absolutePath)
}
