pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
        flatDir { dirs("app/libs") } // the MindSpore Lite AAR (mslite flavor), supplied by the user
    }
}

rootProject.name = "mnv1-tk-demo"
include(":app", ":core")
